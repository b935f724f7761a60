// Original file: gaxx/agent/v1/agent.proto


export interface CreateCsrResponse {
  'csrPem'?: (string);
}

export interface CreateCsrResponse__Output {
  'csrPem': (string);
}
