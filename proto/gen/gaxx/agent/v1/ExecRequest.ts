// Original file: gaxx/agent/v1/agent.proto

import type { Long } from '@grpc/proto-loader';

export interface ExecRequest {
  'taskId'?: (string);
  'argv'?: (string)[];
  'env'?: ({[key: string]: string});
  'workDir'?: (string);
  'stdin'?: (Buffer | Uint8Array | string);
  'timeoutMs'?: (number);
  'outputCapBytes'?: (number | string | Long);
}

export interface ExecRequest__Output {
  'taskId': (string);
  'argv': (string)[];
  'env': ({[key: string]: string});
  'workDir': (string);
  'stdin': (Buffer);
  'timeoutMs': (number);
  'outputCapBytes': (number);
}
