// Original file: gaxx/agent/v1/agent.proto


export interface GetFileRequest {
  'path'?: (string);
}

export interface GetFileRequest__Output {
  'path': (string);
}
