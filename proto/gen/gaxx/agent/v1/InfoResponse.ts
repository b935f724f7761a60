// Original file: gaxx/agent/v1/agent.proto

import type { BlockedPeer as _gaxx_agent_v1_BlockedPeer, BlockedPeer__Output as _gaxx_agent_v1_BlockedPeer__Output } from '../../../gaxx/agent/v1/BlockedPeer.js';
import type { Long } from '@grpc/proto-loader';

export interface InfoResponse {
  'version'?: (string);
  'hostname'?: (string);
  'uid'?: (number);
  'capacity'?: (number);
  'runningTasks'?: (number);
  'loadAverage'?: (number | string)[];
  'certNotAfterUnixMs'?: (number | string | Long);
  'certSerial'?: (string);
  'certRenewalDue'?: (boolean);
  'fleet'?: (string);
  'host'?: (string);
  'environment'?: (string);
  'uptimeMs'?: (number | string | Long);
  'blockedPeers'?: (_gaxx_agent_v1_BlockedPeer)[];
  'tasksStartedTotal'?: (number | string | Long);
  'journalId'?: (string);
}

export interface InfoResponse__Output {
  'version': (string);
  'hostname': (string);
  'uid': (number);
  'capacity': (number);
  'runningTasks': (number);
  'loadAverage': (number)[];
  'certNotAfterUnixMs': (number);
  'certSerial': (string);
  'certRenewalDue': (boolean);
  'fleet': (string);
  'host': (string);
  'environment': (string);
  'uptimeMs': (number);
  'blockedPeers': (_gaxx_agent_v1_BlockedPeer__Output)[];
  'tasksStartedTotal': (number);
  'journalId': (string);
}
