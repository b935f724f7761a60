// Original file: gaxx/agent/v1/agent.proto


export interface CancelResponse {
  'found'?: (boolean);
}

export interface CancelResponse__Output {
  'found': (boolean);
}
