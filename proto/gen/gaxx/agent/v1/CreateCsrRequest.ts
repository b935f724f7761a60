// Original file: gaxx/agent/v1/agent.proto


export interface CreateCsrRequest {
}

export interface CreateCsrRequest__Output {
}
