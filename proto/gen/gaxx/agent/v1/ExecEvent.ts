// Original file: gaxx/agent/v1/agent.proto

import type { Started as _gaxx_agent_v1_Started, Started__Output as _gaxx_agent_v1_Started__Output } from '../../../gaxx/agent/v1/Started.js';
import type { Exit as _gaxx_agent_v1_Exit, Exit__Output as _gaxx_agent_v1_Exit__Output } from '../../../gaxx/agent/v1/Exit.js';

export interface ExecEvent {
  'started'?: (_gaxx_agent_v1_Started | null);
  'stdout'?: (Buffer | Uint8Array | string);
  'stderr'?: (Buffer | Uint8Array | string);
  'exit'?: (_gaxx_agent_v1_Exit | null);
  'event'?: "started"|"stdout"|"stderr"|"exit";
}

export interface ExecEvent__Output {
  'started'?: (_gaxx_agent_v1_Started__Output | null);
  'stdout'?: (Buffer);
  'stderr'?: (Buffer);
  'exit'?: (_gaxx_agent_v1_Exit__Output | null);
  'event'?: "started"|"stdout"|"stderr"|"exit";
}
