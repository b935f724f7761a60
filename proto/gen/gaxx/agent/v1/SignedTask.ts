// Original file: gaxx/agent/v1/agent.proto

import type { TaskTarget as _gaxx_agent_v1_TaskTarget, TaskTarget__Output as _gaxx_agent_v1_TaskTarget__Output } from '../../../gaxx/agent/v1/TaskTarget.js';
import type { Long } from '@grpc/proto-loader';

export interface SignedTask {
  'runId'?: (string);
  'taskId'?: (string);
  'target'?: (_gaxx_agent_v1_TaskTarget | null);
  'expiresAtUnixMs'?: (number | string | Long);
  'maxRounds'?: (number);
  'signature'?: (Buffer | Uint8Array | string);
  'signerCertPem'?: (string);
  'signedAtUnixMs'?: (number | string | Long);
}

export interface SignedTask__Output {
  'runId': (string);
  'taskId': (string);
  'target': (_gaxx_agent_v1_TaskTarget__Output | null);
  'expiresAtUnixMs': (number);
  'maxRounds': (number);
  'signature': (Buffer);
  'signerCertPem': (string);
  'signedAtUnixMs': (number);
}
