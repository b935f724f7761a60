// AgentClient against the real built agent over real mTLS: round trips, refusals mapped to
// GaxxError codes, and identity pinning (the agent keeps serving after every refusal); against a
// stand-in agent that lies about a file's size, a download stopped as soon as the lie shows.
import * as nodeDns from 'node:dns';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa, loadCertDir, type CertBundle } from '../../certs/index.js';
import { isGaxxError, MAX_FILE_BYTES, type ErrorCode } from '../../proto/index.js';
import { AgentClient, localFile } from '../../scheduler/client/index.js';
import { startAgent, stopAllAgents, type AgentProcess } from '../helpers/agent.js';
import { issueCertDir, makePki, type Pki } from '../helpers/pki.js';
import { startStandInAgent } from '../helpers/stand-in-agent.js';

let dir: string;
let pki: Pki;
let agent: AgentProcess;
let creds: CertBundle;
let client: AgentClient;

/** A download's sink that keeps the chunks (small files only). */
function collect(): { chunks: Buffer[]; write: (c: Buffer) => Promise<void> } {
  const chunks: Buffer[] = [];
  return { chunks, write: async (c) => void chunks.push(c) };
}

const ignore = async (): Promise<void> => undefined;

async function codeOf(p: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (isGaxxError(e)) return e.code;
    throw e;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-client-'));
  pki = await makePki(dir, { fleet: 'test', host: 'h1' });
  agent = await startAgent({ certsDir: pki.agent.dir });
  creds = loadCertDir(pki.clients.operator.dir);
  client = AgentClient.connect({ address: agent.address, expect: { fleet: 'test', host: 'h1' } }, creds);
});
afterAll(async () => {
  client?.close();
  await stopAllAgents();
  rmSync(dir, { recursive: true, force: true });
});

describe('AgentClient round trips', () => {
  it('run collects output, exit code and pid', async () => {
    const r = await client.run({ taskId: 'run-1', argv: ['sh', '-c', 'echo hi; echo oops >&2; exit 3'] });
    expect(r.exit.code).toBe(3);
    expect(r.stdout.toString()).toBe('hi\n');
    expect(r.stderr.toString()).toBe('oops\n');
    expect(r.started.pid).toBeGreaterThan(0);
  });

  it('exec streams events: started first, exit last, output in between', async () => {
    const kinds: string[] = [];
    for await (const ev of client.exec({ taskId: 'exec-1', argv: ['sh', '-c', 'echo a; sleep 0.1; echo b'] })) kinds.push(ev.event ?? '?');
    expect(kinds[0]).toBe('started');
    expect(kinds.at(-1)).toBe('exit');
    expect(kinds.filter((k) => k === 'stdout').length).toBeGreaterThanOrEqual(1);
  });

  it('a signal-killed command reports the signal', async () => {
    const r = await client.run({ taskId: 'sig-1', argv: ['sh', '-c', 'kill -KILL $$'] });
    expect(r.exit.signal).toBe('SIGKILL');
  });

  it('aborting the signal cancels the remote task', async () => {
    const ac = new AbortController();
    const events: string[] = [];
    let reason = '';
    for await (const ev of client.exec({ taskId: 'cancel-1', argv: ['sleep', '30'] }, { signal: ac.signal })) {
      events.push(ev.event ?? '?');
      if (ev.started) ac.abort();
      if (ev.exit) reason = ev.exit.reason;
    }
    expect(events.at(-1)).toBe('exit');
    expect(reason).toBe('cancelled');
    expect(await client.cancel('cancel-1')).toBe(false);
  });

  it('a signal aborted while the connection comes up sends nothing: the task never starts', async () => {
    // A new client: its channel is idle, so the Exec first waits for the connection.
    const fresh = AgentClient.connect({ address: agent.address, expect: { fleet: 'test', host: 'h1' } }, creds);
    try {
      const before = Number((await client.info()).tasksStartedTotal);
      const ac = new AbortController();
      const it = fresh.exec({ taskId: 'early-abort', argv: ['true'] }, { signal: ac.signal })[Symbol.asyncIterator]();
      // next() runs the call up to its wait for the connection; the abort comes during that wait.
      const first = it.next();
      ac.abort();
      expect(await codeOf(first)).toBe('CANCELLED');
      // Nothing went out: the agent started no task (an Exec sent with a stop it never heard would have run).
      expect(await fresh.health()).toBe('SERVING');
      const info = await client.info();
      expect(Number(info.tasksStartedTotal)).toBe(before);
      expect(await client.cancel('early-abort')).toBe(false);
    } finally {
      fresh.close();
    }
  });

  it('info and health', async () => {
    const info = await client.info();
    expect(info.fleet).toBe('test');
    expect(info.host).toBe('h1');
    expect(info.capacity).toBeGreaterThan(0);
    expect(await client.health()).toBe('SERVING');
  });

  it('putFile then getFile returns the same bytes, sha256 and mode', async () => {
    const data = Buffer.alloc(200_000, 7);
    data.write('gaxx');
    const put = await client.putFile('sub/file.bin', data, { mode: 0o640 });
    expect(put.size).toBe(data.length);
    const sink = collect();
    const got = await client.getFile('sub/file.bin', sink.write);
    expect(Buffer.concat(sink.chunks).equals(data)).toBe(true);
    expect(got.size).toBe(data.length);
    expect(got.sha256).toBe(put.sha256);
    expect(got.mode & 0o777).toBe(0o640);
  });

  it('a local file is uploaded as it is read, and downloaded chunk by chunk: each write resolves before the next chunk comes', async () => {
    const local = join(dir, 'sparse.bin');
    writeFileSync(local, 'head');
    truncateSync(local, 48 * 1024 * 1024);
    const src = await localFile(local);
    const put = await client.putFile('big/sparse.bin', src, { mode: 0o600 });
    expect([Number(put.size), put.sha256]).toEqual([src.size, src.sha256]);
    let inWrite = 0;
    let most = 0;
    let bytes = 0;
    const got = await client.getFile('big/sparse.bin', async (c) => {
      most = Math.max(most, ++inWrite);
      bytes += c.length;
      await new Promise((r) => setImmediate(r));
      inWrite--;
    });
    expect([got.size, got.sha256, bytes, most]).toEqual([src.size, src.sha256, src.size, 1]);
  });

  it('a local file over MAX_FILE_BYTES is refused before any of it is read (a 64 GiB sparse one, at once)', async () => {
    const huge = join(dir, 'huge.bin');
    writeFileSync(huge, '');
    truncateSync(huge, 64 * 1024 ** 3);
    expect(await codeOf(localFile(huge))).toBe('INVALID_ARGUMENT');
    truncateSync(huge, MAX_FILE_BYTES + 1);
    expect(await codeOf(localFile(huge))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(localFile(dir))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(localFile(join(dir, 'absent')))).toBe('NOT_FOUND');
    rmSync(huge);
  });

  it('a stream past its deadline is DEADLINE_EXCEEDED, and the agent serves on', async () => {
    expect(await codeOf(client.run({ taskId: 'deadline-1', argv: ['sleep', '5'] }, { deadlineMs: 300 }))).toBe('DEADLINE_EXCEEDED');
    await client.cancel('deadline-1');
    expect(await client.health()).toBe('SERVING');
  });

  it("agent refusals come back as GaxxErrors with the agent's code", async () => {
    expect(await codeOf(client.getFile('../outside', ignore))).toBe('PATH_ESCAPE');
    expect(await codeOf(client.putFile('/etc/x', Buffer.from('x')))).toBe('PATH_ESCAPE');
    expect(await codeOf(client.run({ taskId: 'bad id!', argv: ['true'] }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(client.getFile('no-such-file', ignore))).toBe('NOT_FOUND');
    expect((await client.run({ taskId: 'after-refusals', argv: ['true'] })).exit.code).toBe(0);
  });
});

describe('identity pinning', () => {
  it('refuses a CA-signed agent cert naming another host than expected (IDENTITY_MISMATCH)', async () => {
    const wrong = AgentClient.connect({ address: agent.address, expect: { fleet: 'test', host: 'h2' } }, creds);
    try {
      expect(await codeOf(wrong.info())).toBe('IDENTITY_MISMATCH');
      expect(await codeOf(wrong.run({ taskId: 'never', argv: ['true'] }))).toBe('IDENTITY_MISMATCH');
    } finally {
      wrong.close();
    }
    expect(await client.health()).toBe('SERVING');
  });

  it('dialling by DNS name checks the DNS SAN', async () => {
    const byName = AgentClient.connect({ address: `localhost:${agent.port}`, expect: { host: 'h1' } }, creds);
    try {
      expect((await byName.info()).host).toBe('h1');
    } finally {
      byName.close();
    }
  });

  it('an address dialled by IP sets up no name resolver (grpc-js DNS makes a c-ares channel per channel); a name still gets one', async () => {
    // grpc-js reads dns.promises.Resolver when it builds a channel's DNS resolver: counted here.
    const promises = nodeDns.promises as { Resolver: typeof nodeDns.promises.Resolver };
    const Original = promises.Resolver;
    let made = 0;
    promises.Resolver = class extends Original {
      constructor(...args: ConstructorParameters<typeof Original>) {
        super(...args);
        made++;
      }
    };
    try {
      const byIp = AgentClient.connect({ address: agent.address, expect: { host: 'h1' } }, creds);
      try {
        expect((await byIp.info()).host).toBe('h1');
      } finally {
        byIp.close();
      }
      expect(made).toBe(0);
      const byName = AgentClient.connect({ address: `localhost:${agent.port}`, expect: { host: 'h1' } }, creds);
      try {
        expect((await byName.info()).host).toBe('h1');
      } finally {
        byName.close();
      }
      expect(made).toBe(1);
    } finally {
      promises.Resolver = Original;
    }
  });

  it('refuses an agent whose valid cert names other addresses than the one dialled', async () => {
    const certs = join(dir, 'agent-other-ip');
    await issueCertDir(pki.ca, certs, { identity: { role: 'agent', fleet: 'test', host: 'h1' }, hosts: ['127.0.0.2', 'h1.test'] });
    const other = await startAgent({ certsDir: certs });
    const c = AgentClient.connect({ address: other.address }, creds);
    try {
      expect(await codeOf(c.info())).toBe('IDENTITY_MISMATCH');
    } finally {
      c.close();
    }
    expect(await client.health()).toBe('SERVING');
    await other.stop();
  });

  it('refuses an agent whose certificate comes from another CA', async () => {
    const foreignCa = (await FleetCa.init(join(dir, 'foreign-ca'), 'foreign CA')).ca;
    const certs = join(dir, 'agent-foreign');
    mkdirSync(certs, { recursive: true });
    // The agent trusts both CAs (so it starts and accepts our operator); we trust only ours.
    await issueCertDir(foreignCa, certs, { identity: { role: 'agent', fleet: 'test', host: 'h1' }, hosts: ['127.0.0.1'] }, foreignCa.certPem + pki.ca.certPem);
    const foreign = await startAgent({ certsDir: certs });
    const c = AgentClient.connect({ address: foreign.address, expect: { host: 'h1' } }, creds, { connectTimeoutMs: 3000 });
    try {
      const code = await codeOf(c.info());
      expect(code).toBe('UNAVAILABLE');
    } finally {
      c.close();
    }
    expect(await client.health()).toBe('SERVING');
    await foreign.stop();
  });

  it('connection refused is UNAVAILABLE', async () => {
    const c = AgentClient.connect({ address: '127.0.0.1:1' }, creds);
    try {
      expect(await codeOf(c.health())).toBe('UNAVAILABLE');
    } finally {
      c.close();
    }
  });
});

describe('a lying agent', () => {
  it('sending more than its header announced is refused as soon as it does (CHECKSUM_MISMATCH), not after taking it all', async () => {
    const announce = 1024 * 1024;
    const send = 256 * 1024 * 1024;
    const liar = await startStandInAgent(pki.agent.dir, '127.0.0.1', { getFile: { announce, send } });
    const c = AgentClient.connect({ address: liar.address, expect: { fleet: 'test', host: 'h1' } }, creds);
    try {
      let took = 0;
      expect(await codeOf(c.getFile('lie.bin', async (b) => void (took += b.length)))).toBe('CHECKSUM_MISMATCH');
      expect(took).toBeLessThanOrEqual(announce);
      // What it managed to send before the cancel: the announced size and what the stream buffers, far from all of it.
      expect(await liar.getFileEnded).toBeLessThan(announce + 32 * 1024 * 1024);
    } finally {
      c.close();
      await liar.close();
    }
  });

  it('announcing more than MAX_FILE_BYTES is refused before any data is taken', async () => {
    const liar = await startStandInAgent(pki.agent.dir, '127.0.0.1', { getFile: { announce: MAX_FILE_BYTES + 1, send: 64 * 1024 * 1024 } });
    const c = AgentClient.connect({ address: liar.address, expect: { fleet: 'test', host: 'h1' } }, creds);
    try {
      let took = 0;
      expect(await codeOf(c.getFile('big.bin', async (b) => void (took += b.length)))).toBe('FAILED_PRECONDITION');
      expect(took).toBe(0);
      expect(await liar.getFileEnded).toBeLessThan(32 * 1024 * 1024);
    } finally {
      c.close();
      await liar.close();
    }
  });
});
