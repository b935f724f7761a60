// Original file: gaxx/agent/v1/agent.proto

import type { PutFileHeader as _gaxx_agent_v1_PutFileHeader, PutFileHeader__Output as _gaxx_agent_v1_PutFileHeader__Output } from '../../../gaxx/agent/v1/PutFileHeader.js';

export interface PutFileChunk {
  'header'?: (_gaxx_agent_v1_PutFileHeader | null);
  'data'?: (Buffer | Uint8Array | string);
  'chunk'?: "header"|"data";
}

export interface PutFileChunk__Output {
  'header'?: (_gaxx_agent_v1_PutFileHeader__Output | null);
  'data'?: (Buffer);
  'chunk'?: "header"|"data";
}
