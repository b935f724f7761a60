// Original file: gaxx/agent/v1/agent.proto


export interface CancelResponse {
  'found'?: (boolean);
  'finished'?: (boolean);
}

export interface CancelResponse__Output {
  'found': (boolean);
  'finished': (boolean);
}
