// The shared request checks (proto/limits.ts requestProblems) against the agent's Exec schema and
// the queue's task schema: an argv or env the CLI accepts is one neither of them refuses.
import { spawnSync } from 'node:child_process';
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
      ['echo', 'é'.repeat((L.argBytes + 1) / 2)],
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

  it("one argument is at most what Linux's execve takes: 131071 bytes (MAX_ARG_STRLEN, 128 KiB, counts its NUL)", () => {
    const L = REQUEST_LIMITS;
    expect(L.argBytes).toBe(131_071);
    // The kernel's own word on it: the longest argument runs, one byte more is E2BIG.
    expect(spawnSync('/bin/sh', ['-c', 'exit 0', 'x'.repeat(L.argBytes)]).error).toBeUndefined();
    expect(spawnSync('/bin/sh', ['-c', 'exit 0', 'x'.repeat(L.argBytes + 1)]).error).toMatchObject({ code: 'E2BIG' });
    // The CLI's check, the agent's Exec schema and the queue's task schema draw the line at the same byte.
    const exec = (arg: string): boolean =>
      execSchema.safeParse({ taskId: 't1', argv: ['echo', arg], env: {}, workDir: '', stdin: Buffer.alloc(0), timeoutMs: 0, outputCapBytes: 0 }).success;
    const queue = (arg: string): boolean => TaskInputSchema.safeParse({ taskId: '1', fleet: 'web', target: { any: true }, argv: ['echo', arg] }).success;
    for (const [arg, ok] of [
      ['x'.repeat(131_071), true],
      ['x'.repeat(131_072), false],
      // Bytes, not characters: 65536 two-byte characters are 131072 bytes.
      ['é'.repeat(65_535) + 'x', true],
      ['é'.repeat(65_536), false],
    ] as const) {
      expect({ len: arg.length, cli: requestProblems({ argv: ['echo', arg] }).length === 0, exec: exec(arg), queue: queue(arg) }).toEqual({
        len: arg.length,
        cli: ok,
        exec: ok,
        queue: ok,
      });
    }
  });

  it('names what is wrong with its dot-path', () => {
    expect(requestProblems({ argv: ['printf', 'a\0b'] })).toEqual(['argv.1: no NUL bytes']);
    expect(requestProblems({ argv: [''] })).toEqual(['argv.0: the command must not be empty']);
    expect(requestProblems({ argv: [] })).toEqual(['argv: needs at least the command']);
    expect(requestProblems({ env: { A: 'x\0' } })).toEqual(['env.A: no NUL bytes']);
    expect(requestProblems({ argv: ['echo', '\ud800'] })).toHaveLength(1);
  });
});
