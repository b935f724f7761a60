// Original file: gaxx/agent/v1/agent.proto

export const FileArea = {
  FILE_AREA_DATA: 'FILE_AREA_DATA',
  FILE_AREA_CERTS: 'FILE_AREA_CERTS',
} as const;

export type FileArea =
  | 'FILE_AREA_DATA'
  | 0
  | 'FILE_AREA_CERTS'
  | 1

export type FileArea__Output = typeof FileArea[keyof typeof FileArea]
