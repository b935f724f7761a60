import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  canonicalTaskBytes,
  createTaskSigner,
  execIdAllowed,
  execTaskId,
  sha256Hex,
  signTaskFields,
  taskSpecDigest,
  verifyTaskSignature,
  type SignedTaskFields,
} from '../../proto/index.js';
import { checkJobSignature, SignedBlockSchema, signedTaskOf, signTask, type SignableTask } from '../../scheduler/queue/sign.js';

const fields = (over: Partial<SignedTaskFields> = {}): SignedTaskFields => ({
  runId: 'r1',
  taskId: 't1',
  argv: ['sh', '-c', 'echo "$0"', 'x'],
  env: { B: '2', A: '1' },
  stdinSha256: sha256Hex(''),
  workDir: '',
  timeoutMs: 0,
  outputCapBytes: 1024,
  target: { fleet: '', host: '127.0.0.1:8088', agents: ['127.0.0.1:8088'] },
  maxRounds: 1,
  expiresAtUnixMs: 1_900_000_000_000,
  signedAtUnixMs: 1_800_000_000_000,
  ...over,
});

function pemPair(type: 'rsa' | 'ed25519' | 'ec'): { certPem: string; keyPem: string; publicKey: ReturnType<typeof generateKeyPairSync>['publicKey'] } {
  const { privateKey, publicKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  return { certPem: 'unused', keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey };
}

describe('canonical encoding of signed tasks', () => {
  it('is deterministic: key order does not matter, every field does', () => {
    const a = fields();
    const b = { ...fields(), env: { A: '1', B: '2' }, target: { agents: ['127.0.0.1:8088'], host: '127.0.0.1:8088', fleet: '' } };
    expect(canonicalTaskBytes(a).equals(canonicalTaskBytes(b))).toBe(true);
    expect(canonicalTaskBytes(a).toString()).toBe(
      'gaxx-signed-task-v2\n{"argv":["sh","-c","echo \\"$0\\"","x"],"env":{"A":"1","B":"2"},"expiresAtUnixMs":1900000000000,"maxRounds":1,"outputCapBytes":1024,' +
        `"runId":"r1","signedAtUnixMs":1800000000000,"stdinSha256":"${sha256Hex('')}","target":{"agents":["127.0.0.1:8088"],"fleet":"","host":"127.0.0.1:8088"},"taskId":"t1","timeoutMs":0,"v":2,"workDir":""}`,
    );
    const changes: Array<Partial<SignedTaskFields>> = [
      { argv: ['sh', '-c', 'echo "$0" x'] },
      { env: { A: '1', B: '2', C: '' } },
      { stdinSha256: sha256Hex('x') },
      { workDir: 'w' },
      { timeoutMs: 1 },
      { outputCapBytes: 1 },
      { target: { fleet: 'f', host: '', agents: [] } },
      { maxRounds: 2 },
      { expiresAtUnixMs: 1 },
      { signedAtUnixMs: 1_800_000_000_001 },
      { runId: 'r2' },
      { taskId: 't2' },
    ];
    for (const c of changes) expect(taskSpecDigest(fields(c))).not.toBe(taskSpecDigest(a));
  });

  it('is version 2: a signature over the version 1 bytes (no signing time) does not verify, nor one over v2 bytes for a v1 reader', () => {
    const k = pemPair('ed25519');
    const signer = createTaskSigner(k.certPem, k.keyPem);
    const bytes = canonicalTaskBytes(fields()).toString();
    expect(bytes.startsWith('gaxx-signed-task-v2\n')).toBe(true);
    // What an agent or scheduler of version 1 signed and verified: the same fields without signedAtUnixMs.
    const { signedAtUnixMs: _at, ...rest } = fields();
    const v1 = Buffer.from(`gaxx-signed-task-v1\n${canonicalJson({ ...rest, v: 1 })}`);
    expect(verifyTaskSignature(fields(), signer.sign(v1), k.publicKey)).toBe(false);
    // A v1 reader's bytes for a v2 request (field 8 unknown to it, so left out) never match a v2 signature either.
    expect(v1.equals(canonicalTaskBytes(fields()))).toBe(false);
    expect(verifyTaskSignature(fields(), signTaskFields(fields(), signer), k.publicKey)).toBe(true);
  });

  it('frames argv so that joining or splitting arguments changes the bytes', () => {
    expect(taskSpecDigest(fields({ argv: ['a b'] }))).not.toBe(taskSpecDigest(fields({ argv: ['a', 'b'] })));
    expect(taskSpecDigest(fields({ argv: ['a","b'] }))).not.toBe(taskSpecDigest(fields({ argv: ['a', 'b'] })));
  });

  it('refuses values it cannot encode canonically', () => {
    for (const v of [1.5, -1, Number.NaN, null, true, undefined]) expect(() => canonicalJson(v)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(canonicalJson({ b: [1, 'x'], a: {} })).toBe('{"a":{},"b":[1,"x"]}');
  });

  it.each(['rsa', 'ec', 'ed25519'] as const)('signs and verifies with %s keys; any change breaks the signature', (type) => {
    const k = pemPair(type);
    const signer = createTaskSigner(k.certPem, k.keyPem);
    const sig = signTaskFields(fields(), signer);
    expect(verifyTaskSignature(fields(), sig, k.publicKey)).toBe(true);
    expect(verifyTaskSignature(fields({ argv: ['true'] }), sig, k.publicKey)).toBe(false);
    expect(verifyTaskSignature(fields(), Buffer.from('garbage'), k.publicKey)).toBe(false);
  });
});

describe('exec ids a signature allows', () => {
  it('allows the base id and rounds below maxRounds only', () => {
    expect(execTaskId('r1', 't1')).toBe('r1-t1');
    expect(execTaskId('r1', 't1', 2)).toBe('r1-t1.r2');
    expect(execIdAllowed('r1-t1', 'r1', 't1', 1)).toBe(true);
    expect(execIdAllowed('r1-t1.r1', 'r1', 't1', 1)).toBe(false);
    expect(execIdAllowed('r1-t1.r2', 'r1', 't1', 3)).toBe(true);
    expect(execIdAllowed('r1-t1.r3', 'r1', 't1', 3)).toBe(false);
    for (const bad of ['r1-t2', 'r1-t1.r01', 'r1-t1.r0', 'r1-t1x', 'r1-t1.r1.r1', 'x-r1-t1']) expect(execIdAllowed(bad, 'r1', 't1', 5)).toBe(false);
  });
});

describe("the worker's early check of a job", () => {
  // checkJobSignature reads the certificate: sign with the key of a real one.
  it('refuses unsigned, altered and expired jobs by code', async () => {
    const { FleetCa } = await import('../../certs/index.js');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'gxsu-'));
    try {
      const { ca } = await FleetCa.init(join(dir, 'ca'));
      const op = await ca.issue({ identity: { role: 'operator', name: 'alice' } });
      const signer = createTaskSigner(op.certPem, op.keyPem);
      const task: SignableTask = {
        runId: 'r1',
        taskId: 't',
        agents: ['127.0.0.1:1'],
        target: { host: '127.0.0.1:1' },
        argv: ['true'],
        env: {},
        outputCapBytes: 1,
        retry: { attempts: 3, retryOnFailure: false },
      };
      const before = Date.now();
      const signed = signTask(task, Buffer.from('in'), signer, Date.now() + 60_000);
      expect(signed).toMatchObject({ v: 2, signedAtUnixMs: expect.any(Number) });
      expect(signed.signedAtUnixMs).toBeGreaterThanOrEqual(before);
      expect(signed.signedAtUnixMs).toBeLessThanOrEqual(Date.now());
      const stdin = Buffer.from('in').toString('base64');
      expect(checkJobSignature({ ...task, stdin, signed })).toBe(signed);
      // The signing time is signed: moved after the fact (to pass a fleet's creation), the job is altered.
      expect(() => checkJobSignature({ ...task, stdin, signed: { ...signed, signedAtUnixMs: signed.signedAtUnixMs + 3600_000 } })).toThrow(
        expect.objectContaining({ code: 'SIGNATURE_INVALID' }),
      );
      // A version 1 block (an older CLI's) is no job of this version.
      expect(SignedBlockSchema.safeParse({ ...signed, v: 1 }).success).toBe(false);
      const { signedAtUnixMs: _at, ...noTime } = signed;
      expect(SignedBlockSchema.safeParse(noTime).success).toBe(false);
      // signedTaskOf forwards the signing time with the Exec.
      expect(signedTaskOf(task, signTask(task, Buffer.from('in'), signer, Date.now() + 60_000, 1_800_000_000_000))).toMatchObject({
        signedAtUnixMs: 1_800_000_000_000,
      });
      expect(() => checkJobSignature({ ...task, stdin })).toThrow(expect.objectContaining({ code: 'UNSIGNED_TASK' }));
      expect(() => checkJobSignature({ ...task, stdin: Buffer.from('other').toString('base64'), signed })).toThrow(
        expect.objectContaining({ code: 'SIGNATURE_INVALID' }),
      );
      expect(() => checkJobSignature({ ...task, stdin, retry: { attempts: 3, retryOnFailure: true }, signed })).toThrow(
        expect.objectContaining({ code: 'SIGNATURE_INVALID' }),
      );
      expect(() => checkJobSignature({ ...task, stdin, signed: { ...signed, signerCertPem: 'x' } })).toThrow(
        expect.objectContaining({ code: 'SIGNATURE_INVALID' }),
      );
      expect(() => checkJobSignature({ ...task, stdin, signed }, Date.now() + 120_000)).toThrow(expect.objectContaining({ code: 'SIGNATURE_EXPIRED' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
