// Original file: gaxx/agent/v1/agent.proto

import type { Long } from '@grpc/proto-loader';

export interface Exit {
  'code'?: (number);
  'signal'?: (string);
  'durationMs'?: (number | string | Long);
  'truncated'?: (boolean);
  'stdoutBytes'?: (number | string | Long);
  'stderrBytes'?: (number | string | Long);
  'reason'?: (string);
  'error'?: (string);
  'outputCapped'?: (boolean);
}

export interface Exit__Output {
  'code': (number);
  'signal': (string);
  'durationMs': (number);
  'truncated': (boolean);
  'stdoutBytes': (number);
  'stderrBytes': (number);
  'reason': (string);
  'error': (string);
  'outputCapped': (boolean);
}
