// Original file: gaxx/agent/v1/agent.proto


export interface Started {
  'pid'?: (number);
  'attached'?: (boolean);
  'replayed'?: (boolean);
  'fromStart'?: (boolean);
  'journalId'?: (string);
}

export interface Started__Output {
  'pid': (number);
  'attached': (boolean);
  'replayed': (boolean);
  'fromStart': (boolean);
  'journalId': (string);
}
