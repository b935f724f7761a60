// Original file: gaxx/agent/v1/agent.proto

import type { GetFileHeader as _gaxx_agent_v1_GetFileHeader, GetFileHeader__Output as _gaxx_agent_v1_GetFileHeader__Output } from '../../../gaxx/agent/v1/GetFileHeader.js';

export interface GetFileChunk {
  'header'?: (_gaxx_agent_v1_GetFileHeader | null);
  'data'?: (Buffer | Uint8Array | string);
  'chunk'?: "header"|"data";
}

export interface GetFileChunk__Output {
  'header'?: (_gaxx_agent_v1_GetFileHeader__Output | null);
  'data'?: (Buffer);
  'chunk'?: "header"|"data";
}
