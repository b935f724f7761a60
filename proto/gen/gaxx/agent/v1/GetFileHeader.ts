// Original file: gaxx/agent/v1/agent.proto

import type { Long } from '@grpc/proto-loader';

export interface GetFileHeader {
  'size'?: (number | string | Long);
  'mode'?: (number);
  'sha256'?: (string);
}

export interface GetFileHeader__Output {
  'size': (number);
  'mode': (number);
  'sha256': (string);
}
