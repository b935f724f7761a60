// Original file: gaxx/agent/v1/agent.proto

import type { FileArea as _gaxx_agent_v1_FileArea, FileArea__Output as _gaxx_agent_v1_FileArea__Output } from '../../../gaxx/agent/v1/FileArea.js';
import type { Long } from '@grpc/proto-loader';

export interface PutFileHeader {
  'path'?: (string);
  'mode'?: (number);
  'size'?: (number | string | Long);
  'sha256'?: (string);
  'area'?: (_gaxx_agent_v1_FileArea);
}

export interface PutFileHeader__Output {
  'path': (string);
  'mode': (number);
  'size': (number);
  'sha256': (string);
  'area': (_gaxx_agent_v1_FileArea__Output);
}
