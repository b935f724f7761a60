/** `n` and its noun, singular for exactly one: `counted(1, 'task')` is "1 task", `counted(3, 'task')` "3 tasks". */
export function counted(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
