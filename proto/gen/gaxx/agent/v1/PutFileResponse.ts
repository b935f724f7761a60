// Original file: gaxx/agent/v1/agent.proto

import type { Long } from '@grpc/proto-loader';

export interface PutFileResponse {
  'path'?: (string);
  'size'?: (number | string | Long);
  'sha256'?: (string);
}

export interface PutFileResponse__Output {
  'path': (string);
  'size': (number);
  'sha256': (string);
}
