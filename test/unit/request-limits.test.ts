// The shared request checks (proto/limits.ts requestProblems) against the agent's Exec schema and
// the queue's task schema: an argv or env the CLI accepts is one neither of them refuses.
import { describe, expect, it } from 'vitest';
import { execSchema } from '../../agent/exec/exec-request.js';
import { REQUEST_LIMITS, requestProblems } from '../../proto/index.js';
import { TaskInputSchema } from '../../scheduler/queue/task.js';

describe('request checks', () => {
  it("requestProblems refuses whatever the agent's Exec schema or the queue's task schema refuse in argv or env", () => {
    const exec = (argv: string[], env: Record<string, string>): boolean =>
      execSchema.safeParse({ taskId: 't1', argv, env, workDir: '', stdin: Buffer.alloc(0), timeoutMs: 0, outputCapBytes: 0 }).success;
    const queue = (argv: string[], env: Record<string, string>): boolean =>
      TaskInputSchema.safeParse({ taskId: '1', fleet: 'web', target: { any: true }, argv, env }).success;
    const L = REQUEST_LIMITS;
    const argvs: string[][] = [
      ['echo', 'ok'],
      [],
      [''],
      ['', 'x'],
      ['echo', 'a\0b'],
      ['echo', '\ud800'],
      ['echo', 'x'.repeat(L.argBytes)],
      ['echo', 'x'.repeat(L.argBytes + 1)],
      ['echo', 'é'.repeat(L.argBytes / 2 + 1)],
      Array.from({ length: L.argvItems + 1 }, () => 'x'),
      Array.from({ length: 9 }, () => 'x'.repeat(L.argBytes)),
    ];
    const envs: Array<Record<string, string>> = [
      {},
      { A: '1' },
      { A: 'a\0b' },
      { A: '\udc00' },
      { '1A': 'x' },
      { A: 'x'.repeat(L.envValueBytes + 1) },
      Object.fromEntries(Array.from({ length: L.envEntries + 1 }, (_, i) => [`V${i}`, 'x'])),
      Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`V${i}`, 'x'.repeat(L.envValueBytes)])),
    ];
    for (const argv of argvs) {
      for (const env of envs) {
        const accepted = requestProblems({ argv, env }).length === 0;
        const what = `${argv.length} args ${JSON.stringify(argv).slice(0, 40)}, env ${JSON.stringify(env).slice(0, 40)}`;
        if (accepted) expect(exec(argv, env) && queue(argv, env), what).toBe(true);
      }
    }
    // And what they all accept, it accepts.
    expect(requestProblems({ argv: ['echo', 'ok'], env: { A: '1' } })).toEqual([]);
  });

  it('names what is wrong with its dot-path', () => {
    expect(requestProblems({ argv: ['printf', 'a\0b'] })).toEqual(['argv.1: no NUL bytes']);
    expect(requestProblems({ argv: [''] })).toEqual(['argv.0: the command must not be empty']);
    expect(requestProblems({ argv: [] })).toEqual(['argv: needs at least the command']);
    expect(requestProblems({ env: { A: 'x\0' } })).toEqual(['env.A: no NUL bytes']);
    expect(requestProblems({ argv: ['echo', '\ud800'] })).toHaveLength(1);
  });
});
