// Original file: gaxx/agent/v1/agent.proto


export interface CancelRequest {
  'taskId'?: (string);
}

export interface CancelRequest__Output {
  'taskId': (string);
}
