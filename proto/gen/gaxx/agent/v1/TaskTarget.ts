// Original file: gaxx/agent/v1/agent.proto


export interface TaskTarget {
  'fleet'?: (string);
  'host'?: (string);
  'agents'?: (string)[];
}

export interface TaskTarget__Output {
  'fleet': (string);
  'host': (string);
  'agents': (string)[];
}
