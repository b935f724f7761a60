// Original file: gaxx/agent/v1/agent.proto

import type { SignedTask as _gaxx_agent_v1_SignedTask, SignedTask__Output as _gaxx_agent_v1_SignedTask__Output } from '../../../gaxx/agent/v1/SignedTask.js';
import type { Long } from '@grpc/proto-loader';

export interface ExecRequest {
  'taskId'?: (string);
  'argv'?: (string)[];
  'env'?: ({[key: string]: string});
  'workDir'?: (string);
  'stdin'?: (Buffer | Uint8Array | string);
  'timeoutMs'?: (number);
  'outputCapBytes'?: (number | string | Long);
  'signed'?: (_gaxx_agent_v1_SignedTask | null);
  'existingOnly'?: (boolean);
  'journalId'?: (string);
}

export interface ExecRequest__Output {
  'taskId': (string);
  'argv': (string)[];
  'env': ({[key: string]: string});
  'workDir': (string);
  'stdin': (Buffer);
  'timeoutMs': (number);
  'outputCapBytes': (number);
  'signed': (_gaxx_agent_v1_SignedTask__Output | null);
  'existingOnly': (boolean);
  'journalId': (string);
}
