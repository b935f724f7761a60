import { describe, expect, it } from 'vitest';
import { isGaxxError } from '../../proto/index.js';
import { assertJobId, jobIdFor, newRunId, parseRunSpec, parseTaskSpec } from '../../scheduler/queue/task.js';

const task = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  taskId: 't1',
  agents: ['127.0.0.1:8088'],
  target: { host: '127.0.0.1:8088' },
  argv: ['true'],
  ...over,
});

function refusal(fn: () => unknown): { code: string; paths: string[] } {
  try {
    fn();
  } catch (e) {
    if (!isGaxxError(e)) throw e;
    const issues = (e.details?.issues ?? []) as Array<{ path: string }>;
    return { code: e.code, paths: issues.map((i) => i.path) };
  }
  throw new Error('expected a refusal');
}

describe('TaskSpec validation', () => {
  it('keeps a named work dir', () => {
    expect(parseRunSpec({ runId: 'r1', tasks: [task({ workDir: 'job/out' })] }).tasks[0]?.workDir).toBe('job/out');
  });

  it('accepts a minimal pinned task and fills defaults', () => {
    const run = parseRunSpec({ runId: 'r1', tasks: [task()] });
    expect(run.tasks[0]).toMatchObject({ env: {}, retry: { attempts: 5, retryOnFailure: false }, outputCapBytes: 1024 * 1024 });
  });

  it.each([
    ['argv empty', task({ argv: [] }), 'tasks.0.argv'],
    ['argv[0] empty', task({ argv: [''] }), 'tasks.0.argv'],
    ['argv wrong type', task({ argv: 'uptime' }), 'tasks.0.argv'],
    ['argv item wrong type', task({ argv: ['echo', 5] }), 'tasks.0.argv.1'],
    ['timeout wrong type', task({ timeoutMs: '10s' }), 'tasks.0.timeoutMs'],
    ['work dir leaving the data dir', task({ workDir: '../x' }), 'tasks.0.workDir'],
    ['absolute work dir', task({ workDir: '/etc' }), 'tasks.0.workDir'],
    ["work dir in the agent's tasks/", task({ workDir: './tasks/x' }), 'tasks.0.workDir'],
    ['work dir naming the data dir', task({ workDir: './' }), 'tasks.0.workDir'],
    ['negative timeout', task({ timeoutMs: -1 }), 'tasks.0.timeoutMs'],
    ['env value wrong type', task({ env: { A: 1 } }), 'tasks.0.env.A'],
    ['env bad name', task({ env: { 'A=B': 'x' } }), 'tasks.0.env.A=B'],
    ['huge env', task({ env: { BIG: 'x'.repeat(70_000) } }), 'tasks.0.env'],
    ['too many env entries', task({ env: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`V${i}`, '1'])) }), 'tasks.0.env'],
    ['stdin not base64', task({ stdin: '***' }), 'tasks.0.stdin'],
    ['stdin too big', task({ stdin: Buffer.alloc(1024 * 1024 + 3).toString('base64') }), 'tasks.0.stdin'],
    ['both fleet and agents', task({ fleet: 'web' }), 'tasks.0.fleet'],
    ['neither fleet nor agents', task({ agents: undefined }), 'tasks.0.fleet'],
    ['pinned host not in agents', task({ target: { host: '127.0.0.1:9' } }), 'tasks.0.target.host'],
    ['bad agent address', task({ agents: ['no-port'], target: { any: true } }), 'tasks.0.agents.0'],
    ['unknown field', task({ shell: 'uptime' }), 'tasks.0'],
    ['task id with colon', task({ taskId: 'a:b' }), 'tasks.0.taskId'],
    ['retry attempts out of range', task({ retry: { attempts: 0 } }), 'tasks.0.retry.attempts'],
    ['input not in run', task({ input: 'data' }), 'tasks.0.input'],
  ])('refuses %s with INVALID_ARGUMENT at %s', (_name, t, path) => {
    const r = refusal(() => parseRunSpec({ runId: 'r1', tasks: [t] }));
    expect(r.code).toBe('INVALID_ARGUMENT');
    expect(r.paths).toContain(path);
  });

  it('refuses bad run ids, duplicate task ids and an empty run', () => {
    expect(refusal(() => parseRunSpec({ runId: 'a-b', tasks: [task()] })).paths).toContain('runId');
    expect(refusal(() => parseRunSpec({ runId: 'a:b', tasks: [task()] })).paths).toContain('runId');
    expect(refusal(() => parseRunSpec({ runId: 'r1', tasks: [task(), task()] })).paths).toContain('tasks.1.taskId');
    expect(refusal(() => parseRunSpec({ runId: 'r1', tasks: [] })).paths).toContain('tasks');
  });

  it('validates job data read back from redis', () => {
    expect(parseTaskSpec({ ...task(), runId: 'r1' }).runId).toBe('r1');
    expect(refusal(() => parseTaskSpec({ ...task(), runId: 5 })).code).toBe('INVALID_ARGUMENT');
    // A job signed by an older gaxx (v1: no signing time) says so, not only which field differs.
    const v1 = { v: 1, expiresAtUnixMs: Date.now() + 60_000, stdinSha256: 'a'.repeat(64), signature: 'AAAA', signerCertPem: 'x' };
    expect(() => parseTaskSpec({ ...task(), runId: 'r1', signed: v1 })).toThrow(/signed\.v: signed by a gaxx of another version .*enqueue the run again/);
  });
});

describe('job ids', () => {
  it('is <runId>-<taskId>', () => {
    expect(jobIdFor('r1', 'web-1')).toBe('r1-web-1');
  });

  it.each(['', '123', 'a:b', 'a b', 'x'.repeat(122)])('refuses %j', (id) => {
    expect(refusal(() => assertJobId(id)).code).toBe('INVALID_ARGUMENT');
  });

  it('makes run ids that are valid and distinct', () => {
    const a = newRunId(1000, () => 0.1);
    const b = newRunId(1000, () => 0.2);
    expect(a).not.toBe(b);
    expect(() => parseRunSpec({ runId: a, tasks: [task()] })).not.toThrow();
    expect(() => assertJobId(jobIdFor(a, 't'))).not.toThrow();
  });
});
