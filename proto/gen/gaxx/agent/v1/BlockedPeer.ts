// Original file: gaxx/agent/v1/agent.proto

import type { Long } from '@grpc/proto-loader';

export interface BlockedPeer {
  'address'?: (string);
  'untilUnixMs'?: (number | string | Long);
  'reason'?: (string);
}

export interface BlockedPeer__Output {
  'address': (string);
  'untilUnixMs': (number);
  'reason': (string);
}
