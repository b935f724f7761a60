/**
 * Signed work against a real agent process (run as nobody), a real redis-server and real mTLS:
 * a scheduler-role caller runs only what an operator signed. Every refusal is asserted by code,
 * with a marker file showing the command never ran, and followed by a good call that works.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { execTaskId, type SignedTarget, type TaskSigner } from '../../proto/index.js';
import { SchedulerWorker } from '../../scheduler/dispatch/worker.js';
import type { TaskResult } from '../../scheduler/queue/results.js';
import { RUNS_KEY } from '../../scheduler/queue/runs.js';
import { waitForRun } from '../../scheduler/queue/wait.js';
import { signTask } from '../../scheduler/queue/sign.js';
import { auditEvents, markerDir, startAgent, type AgentProcess } from '../helpers/agent.js';
import { execCollect, execStarted, exitOf, rawAgentClient, unary, type RawClients } from '../helpers/grpc.js';
import { startSchedulerWorld, type SchedulerWorld } from '../helpers/scheduler-world.js';
import { issueCertDir, type PkiCertDir } from '../helpers/pki.js';
import { addJobByHand, Markers, rawSigner, signedExec, type SignedExecOptions } from '../helpers/signed.js';

describe('signed work', () => {
  let world: SchedulerWorld;
  let agent: AgentProcess;
  let sched: RawClients;
  let op: RawClients;
  let markers: Markers;
  let alice: TaskSigner;
  let self: SignedTarget;
  /** An agent of a fleet created at `since` (--fleet-since), with the same certificate as `agent`. */
  let fenced: AgentProcess;
  let fencedSched: RawClients;
  let since: number;
  let caTrue: PkiCertDir;
  let n = 0;
  const uniq = (p: string): string => `${p}${++n}`;

  beforeAll(async () => {
    world = await startSchedulerWorld({ agents: 1, prefix: 'gxsig-' });
    agent = world.agents[0] as AgentProcess;
    sched = rawAgentClient(agent.address, world.pki.clients.scheduler.dir);
    op = rawAgentClient(agent.address, world.pki.clients.operator.dir);
    markers = new Markers(markerDir('signed-work'));
    alice = world.signer;
    self = { fleet: '', host: agent.address, agents: [agent.address] };
    since = Date.now();
    fenced = await startAgent({ certsDir: world.pki.agent.dir, args: ['--fleet-since', String(since)] });
    fencedSched = rawAgentClient(fenced.address, world.pki.clients.scheduler.dir);
    caTrue = await issueCertDir(world.pki.ca, join(world.dir, 'ca-true'), { identity: { role: 'operator', name: 'mallory' }, testOnlyCaTrue: true });
  });

  afterAll(async () => {
    fencedSched?.close();
    sched?.close();
    op?.close();
    await world?.close();
  });

  /** A good signed Exec from the scheduler: it runs (the marker appears) and exits 0. */
  async function goodCall(): Promise<void> {
    const name = uniq('good');
    const r = await execCollect(sched.agent, signedExec(alice, { runId: uniq('r'), taskId: 't', argv: markers.argv(name), target: self }));
    expect(r.error).toBeUndefined();
    expect(exitOf(r)).toMatchObject({ code: 0 });
    expect(markers.ran(name)).toBe(true);
  }

  describe('the agent refuses a scheduler Exec that is not signed work', () => {
    type Case = [string, string, (argv: string[]) => Parameters<typeof execCollect>[1]];
    const base = (argv: string[], o: Partial<SignedExecOptions> = {}): SignedExecOptions => ({ runId: uniq('r'), taskId: 't', argv, target: self, ...o });
    const cases: Case[] = [
      ['unsigned', 'UNSIGNED_TASK', (argv) => ({ taskId: uniq('u'), argv })],
      ['argv altered after signing', 'SIGNATURE_INVALID', (argv) => ({ ...signedExec(alice, base(['true'])), argv })],
      ['env added after signing', 'SIGNATURE_INVALID', (argv) => ({ ...signedExec(alice, base(argv)), env: { EXTRA: '1' } })],
      [
        'stdin swapped after signing',
        'SIGNATURE_INVALID',
        (argv) => ({ ...signedExec(alice, base(argv, { stdin: Buffer.from('a') })), stdin: Buffer.from('b') }),
      ],
      ['expired', 'SIGNATURE_EXPIRED', (argv) => signedExec(alice, base(argv, { expiresAtUnixMs: Date.now() - 1000 }))],
      ['replayed under another task id', 'TASK_ID_MISMATCH', (argv) => signedExec(alice, base(argv, { execId: uniq('other') }))],
      [
        'a round beyond the signed ones',
        'TASK_ID_MISMATCH',
        (argv) => {
          const b = base(argv, { maxRounds: 2 });
          return signedExec(alice, { ...b, execId: `${execTaskId(b.runId, b.taskId)}.r2` });
        },
      ],
      ['signed by a scheduler certificate', 'SIGNER_NOT_OPERATOR', (argv) => signedExec(rawSigner(world.pki.clients.scheduler.dir), base(argv))],
      ['signed by a monitor certificate', 'SIGNER_NOT_OPERATOR', (argv) => signedExec(rawSigner(world.pki.clients.monitor.dir), base(argv))],
      ['signed by a certificate with two URI SANs', 'SIGNER_NOT_OPERATOR', (argv) => signedExec(rawSigner(world.pki.clients.twoUri.dir), base(argv))],
      ["signed by a foreign CA's operator", 'SIGNER_UNTRUSTED', (argv) => signedExec(rawSigner(world.pki.clients.foreign.dir), base(argv))],
      // The fleet CA's own issue, but CA:TRUE (keyUsage without keyCertSign: OpenSSL's flag says no CA).
      ['signed by a CA:TRUE operator certificate', 'SIGNER_UNTRUSTED', (argv) => signedExec(rawSigner(caTrue.dir), base(argv))],
      ['signed by a revoked operator', 'SIGNER_UNTRUSTED', (argv) => signedExec(rawSigner(world.pki.clients.revoked.dir), base(argv))],
      ['signed by an expired operator certificate', 'SIGNER_UNTRUSTED', (argv) => signedExec(rawSigner(world.pki.clients.expired.dir), base(argv))],
      [
        'a foreign cert with the signature of its own key',
        'SIGNER_UNTRUSTED',
        (argv) => {
          // The operator's signature, but the certificate swapped for a foreign one.
          const r = signedExec(alice, base(argv));
          return { ...r, signed: { ...r.signed, signerCertPem: readFileSync(join(world.pki.clients.foreign.dir, 'cert.pem'), 'utf8') } };
        },
      ],
      [
        'signed for another agent address',
        'TARGET_MISMATCH',
        (argv) => signedExec(alice, base(argv, { target: { fleet: '', host: '127.0.0.1:1', agents: ['127.0.0.1:1'] } })),
      ],
      ['signed for another fleet', 'TARGET_MISMATCH', (argv) => signedExec(alice, base(argv, { target: { fleet: 'other', host: '', agents: [] } }))],
      [
        'signed for another host of its fleet',
        'TARGET_MISMATCH',
        (argv) => signedExec(alice, base(argv, { target: { fleet: 'test', host: 'h2', agents: [] } })),
      ],
    ];

    it.each(cases)('%s: %s, nothing runs; then a good call works', async (_what, code, make) => {
      const name = uniq('bad');
      const r = await execCollect(sched.agent, make(markers.argv(name)));
      expect(r.error?.gaxxCode).toBe(code);
      expect(r.events).toHaveLength(0);
      expect(markers.ran(name)).toBe(false);
      await goodCall();
    });

    it('accepts a fleet target naming this agent, and an allowed re-run round', async () => {
      const name = uniq('fleet');
      const fleet = await execCollect(
        sched.agent,
        signedExec(alice, { runId: uniq('r'), taskId: 't', argv: markers.argv(name), target: { fleet: 'test', host: 'h1', agents: [] } }),
      );
      expect(exitOf(fleet)).toMatchObject({ code: 0 });
      const b = { runId: uniq('r'), taskId: 't', argv: markers.argv(name), target: self, maxRounds: 3 };
      const round2 = await execCollect(sched.agent, signedExec(alice, { ...b, execId: `${execTaskId(b.runId, b.taskId)}.r2` }));
      expect(exitOf(round2)).toMatchObject({ code: 0 });
      expect(readFileSync(markers.path(name), 'utf8')).toBe('ran\nran\n');
    });

    it('audits each refusal with its code and never the arguments', () => {
      const lines = readFileSync(agent.auditLog, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const refused = lines.filter((l) => l.event === 'exec_refused');
      expect(new Set(refused.map((l) => l.code))).toEqual(new Set(cases.map((c) => c[1])));
      expect(refused.every((l) => l.identity === 'scheduler sched' && l.argv0 === 'sh')).toBe(true);
      expect(readFileSync(agent.auditLog, 'utf8')).not.toContain('echo ran');
    });
  });

  describe('work signed before the fleet was created (--fleet-since)', () => {
    // The agents' certificate names fleet 'test', host 'h1': a re-created fleet's agent names the old one's fleet and host.
    const fleetTarget: SignedTarget = { fleet: 'test', host: 'h1', agents: [] };

    it('is refused with SIGNED_BEFORE_FLEET, audited, nothing runs; the agent serves on: work signed at or after that time runs', async () => {
      const before = uniq('before');
      const old = { runId: uniq('r'), taskId: 't', argv: markers.argv(before), target: fleetTarget, signedAtUnixMs: since - 60_000 };
      const r = await execCollect(fencedSched.agent, signedExec(alice, old));
      expect(r.error).toEqual({ status: 7, gaxxCode: 'SIGNED_BEFORE_FLEET' });
      expect(r.events).toHaveLength(0);
      expect(markers.ran(before)).toBe(false);
      // Its start line says since when (for whoever reads such a refusal).
      expect(fenced.stderr()).toContain(`"fleetSince":"${new Date(since).toISOString()}"`);
      expect(auditEvents(fenced.auditLog).filter((l) => l.event === 'exec_refused')).toContainEqual(
        expect.objectContaining({ code: 'SIGNED_BEFORE_FLEET', identity: 'scheduler sched', signedTask: `${old.runId}/t`, argv0: 'sh' }),
      );
      // A millisecond before is before; the very millisecond, and later, are the fleet's own.
      const justBefore = await execCollect(fencedSched.agent, signedExec(alice, { ...old, runId: uniq('r'), signedAtUnixMs: since - 1 }));
      expect(justBefore.error?.gaxxCode).toBe('SIGNED_BEFORE_FLEET');
      expect(markers.ran(before)).toBe(false);
      for (const at of [since, Date.now()]) {
        const name = uniq('after');
        const ok = await execCollect(fencedSched.agent, signedExec(alice, { ...old, runId: uniq('r'), argv: markers.argv(name), signedAtUnixMs: at }));
        expect(exitOf(ok)).toMatchObject({ code: 0 });
        expect(markers.ran(name)).toBe(true);
      }
    });

    it('is refused whatever the target names: a fleet-less run addressed to the agent too', async () => {
      const target = { fleet: '', host: fenced.address, agents: [fenced.address] };
      const name = uniq('addr');
      const r = await execCollect(
        fencedSched.agent,
        signedExec(alice, { runId: uniq('r'), taskId: 't', argv: markers.argv(name), target, signedAtUnixMs: since - 60_000 }),
      );
      expect(r.error?.gaxxCode).toBe('SIGNED_BEFORE_FLEET');
      expect(markers.ran(name)).toBe(false);
    });

    it('an agent without --fleet-since runs work signed at any time', async () => {
      for (const at of [since - 60_000, Date.now() - 23 * 3600_000, Date.now()]) {
        const name = uniq('anytime');
        const r = await execCollect(
          sched.agent,
          signedExec(alice, { runId: uniq('r'), taskId: 't', argv: markers.argv(name), target: fleetTarget, signedAtUnixMs: at }),
        );
        expect(exitOf(r)).toMatchObject({ code: 0 });
        expect(markers.ran(name)).toBe(true);
      }
    });
  });

  describe('the exactly-once registry replays only the same spec', () => {
    it('refuses a different spec under an existing task id (operator), replays the same one', async () => {
      const name = uniq('reg');
      const id = uniq('reg-task');
      const first = await execCollect(op.agent, { taskId: id, argv: markers.argv(name) });
      expect(exitOf(first)).toMatchObject({ code: 0 });
      for (const other of [{ argv: ['true'] }, { argv: markers.argv(name), env: { X: '1' } }, { argv: markers.argv(name), stdin: Buffer.from('x') }]) {
        const r = await execCollect(op.agent, { taskId: id, ...other });
        expect(r.error?.gaxxCode).toBe('TASK_SPEC_MISMATCH');
      }
      const again = await execCollect(op.agent, { taskId: id, argv: markers.argv(name) });
      expect(again.events[0]?.started).toMatchObject({ replayed: true });
      expect(readFileSync(markers.path(name), 'utf8')).toBe('ran\n');
    });

    it('replays a signed task only to the same signed spec', async () => {
      const name = uniq('sreg');
      const o = { runId: uniq('r'), taskId: 't', argv: markers.argv(name), target: self };
      const req = signedExec(alice, o);
      expect(exitOf(await execCollect(sched.agent, req))).toMatchObject({ code: 0 });
      // Re-signed by the same operator with another expiry: a different spec under the same id.
      const resigned = await execCollect(sched.agent, signedExec(alice, { ...o, expiresAtUnixMs: Date.now() + 7200_000 }));
      expect(resigned.error?.gaxxCode).toBe('TASK_SPEC_MISMATCH');
      // The operator's direct call with the same argv under that id is another spec too.
      expect((await execCollect(op.agent, { taskId: req.taskId as string, argv: o.argv })).error?.gaxxCode).toBe('TASK_SPEC_MISMATCH');
      const same = await execCollect(sched.agent, req);
      expect(same.events[0]?.started).toMatchObject({ replayed: true });
      expect(readFileSync(markers.path(name), 'utf8')).toBe('ran\n');
    });
  });

  describe('a scheduler cancels signed work only', () => {
    it("an operator's unsigned task: PERMISSION_DENIED, audited, it runs on; a signed one is cancelled", async () => {
      const opTask = uniq('op-long');
      const unsigned = await execStarted(op.agent, { taskId: opTask, argv: ['sleep', '120'] });
      const refused = await unary(sched.agent.Cancel.bind(sched.agent), { taskId: opTask });
      expect(refused.ok ? 'ok' : `${refused.status}:${refused.gaxxCode}: ${refused.details}`).toBe(
        `7:PERMISSION_DENIED: a scheduler may cancel only signed tasks: ${opTask} was started by an operator without a signature`,
      );
      const audit = readFileSync(agent.auditLog, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(audit.filter((l) => l.event === 'task_cancel' && l.taskId === opTask)).toMatchObject([
        { identity: 'scheduler sched', found: false, refused: 'unsigned task' },
      ]);
      // Still running: the operator's own Cancel finds it and ends it.
      expect(await unary(op.agent.Cancel.bind(op.agent), { taskId: opTask })).toMatchObject({ ok: true, value: { found: true } });
      expect(exitOf(await unsigned.result)).toMatchObject({ reason: 'cancelled' });
      // A signed task of the scheduler's own: its Cancel works.
      const req = signedExec(alice, { runId: uniq('r'), taskId: 't', argv: ['sleep', '120'], target: self });
      const signed = await execStarted(sched.agent, req);
      expect(await unary(sched.agent.Cancel.bind(sched.agent), { taskId: req.taskId as string })).toMatchObject({ ok: true, value: { found: true } });
      expect(exitOf(await signed.result)).toMatchObject({ reason: 'cancelled' });
    });
  });

  describe('a signed task its agent no longer holds', () => {
    it('does not run again under its id until its signature expires', async () => {
      // Long enough that the replay right after the end comes within it on a loaded machine.
      const short = await startAgent({ certsDir: world.pki.agent.dir, args: ['--task-retention', '4s'] });
      const s = rawAgentClient(short.address, world.pki.clients.scheduler.dir);
      try {
        const name = uniq('spent');
        const target = { fleet: '', host: short.address, agents: [short.address] };
        const req = signedExec(alice, { runId: uniq('r'), taskId: 't', argv: markers.argv(name), target });
        expect(exitOf(await execCollect(s.agent, req))).toMatchObject({ code: 0 });
        // Replayed while held; once forgotten (4 s after it ended), refused, never run again.
        const kinds: string[] = [];
        await vi.waitFor(
          async () => {
            const r = await execCollect(s.agent, req);
            kinds.push(r.error?.gaxxCode ?? (r.events[0]?.started?.replayed ? 'replayed' : 'ran'));
            expect(kinds.at(-1)).toBe('ALREADY_EXISTS');
          },
          { timeout: 60_000, interval: 200 },
        );
        expect(new Set(kinds)).toEqual(new Set(['replayed', 'ALREADY_EXISTS']));
        expect(readFileSync(markers.path(name), 'utf8')).toBe('ran\n');
        const audit = readFileSync(short.auditLog, 'utf8');
        expect(audit).toMatch(/"code":"ALREADY_EXISTS"/);
      } finally {
        s.close();
        await short.stop();
      }
    });
  });

  describe('jobs written into Redis by hand', () => {
    let worker: SchedulerWorker;
    beforeAll(async () => {
      worker = SchedulerWorker.start({ settings: world.settings, connect: world.connect(), concurrency: 4 });
      await worker.ready();
    });
    afterAll(async () => {
      await worker?.drain(2000);
    });

    /** A job's data as enqueue would write it (signed by `signer`, at `o.signedAt`), for task `taskId` of `runId`. */
    function jobData(
      runId: string,
      taskId: string,
      argv: string[],
      signer: TaskSigner,
      expiresAt = Date.now() + 3600_000,
      o: { to?: AgentProcess; signedAt?: number; attempts?: number } = {},
    ): Record<string, unknown> {
      const to = o.to ?? agent;
      const spec = {
        runId,
        taskId,
        agents: [to.address],
        target: { host: to.address },
        argv,
        env: {},
        outputCapBytes: 1024 * 1024,
        retry: { attempts: o.attempts ?? 1, retryOnFailure: false, backoffMs: 500 },
      };
      return { ...spec, signed: signTask(spec, Buffer.alloc(0), signer, expiresAt, o.signedAt) };
    }

    async function resultOf(runId: string, taskId: string): Promise<TaskResult> {
      const r = await waitForRun(world.queue.redis, runId, [taskId], { timeoutMs: 60_000 });
      return r.results.get(taskId) as TaskResult;
    }

    type JobCase = [string, string, (runId: string, argv: string[]) => { jobId?: string; data: Record<string, unknown> }];
    const cases: JobCase[] = [
      [
        'unsigned',
        'UNSIGNED_TASK',
        (runId, argv) => {
          const { signed: _s, ...data } = jobData(runId, 't', argv, alice);
          return { data };
        },
      ],
      ['argv altered after signing', 'SIGNATURE_INVALID', (runId, argv) => ({ data: { ...jobData(runId, 't', ['true'], alice), argv } })],
      ['target moved after signing', 'SIGNATURE_INVALID', (runId, argv) => ({ data: { ...jobData(runId, 't', argv, alice), target: { any: true } } })],
      ['expired', 'SIGNATURE_EXPIRED', (runId, argv) => ({ data: jobData(runId, 't', argv, alice, Date.now() - 1000) })],
      ['replayed under another task id', 'TASK_ID_MISMATCH', (runId, argv) => ({ jobId: `${runId}-replay`, data: jobData(runId, 't', argv, alice) })],
      [
        'signed by the scheduler certificate',
        'SIGNER_NOT_OPERATOR',
        (runId, argv) => ({ data: jobData(runId, 't', argv, rawSigner(world.pki.clients.scheduler.dir)) }),
      ],
      [
        "signed by a foreign CA's operator",
        'SIGNER_UNTRUSTED',
        (runId, argv) => ({ data: jobData(runId, 't', argv, rawSigner(world.pki.clients.foreign.dir)) }),
      ],
    ];

    it.each(cases)('%s: the run says %s and the command never runs; then a signed job runs', async (_what, code, make) => {
      const runId = uniq('hand');
      const name = uniq('job');
      const { jobId, data } = make(runId, markers.argv(name));
      // Written into the run's own queue, registered as a run, as a Redis writer could.
      await world.queue.redis.zadd(RUNS_KEY, Date.now(), runId);
      await addJobByHand(world.queue.queueFor(runId), jobId ?? `${runId}-t`, data);
      const r = await resultOf(runId, 't');
      expect(r).toMatchObject({ outcome: 'error', reason: code });
      expect(markers.ran(name)).toBe(false);

      const goodRun = uniq('handok');
      const good = uniq('jobok');
      await world.queue.redis.zadd(RUNS_KEY, Date.now(), goodRun);
      await addJobByHand(world.queue.queueFor(goodRun), `${goodRun}-t`, jobData(goodRun, 't', markers.argv(good), alice));
      expect(await resultOf(goodRun, 't')).toMatchObject({ outcome: 'succeeded', exitCode: 0 });
      expect(markers.ran(good)).toBe(true);
    });

    it("a job signed before its agent's fleet was created ends as an error with the code and the agent's message, never retried", async () => {
      const runId = uniq('stale');
      const name = uniq('stalejob');
      await world.queue.redis.zadd(RUNS_KEY, Date.now(), runId);
      // Five attempts allowed: a refusal is the agent's verdict, not a transport failure to retry.
      await addJobByHand(
        world.queue.queueFor(runId),
        `${runId}-t`,
        jobData(runId, 't', markers.argv(name), alice, undefined, { to: fenced, signedAt: since - 60_000, attempts: 5 }),
      );
      const r = await resultOf(runId, 't');
      expect(r).toMatchObject({ outcome: 'error', reason: 'SIGNED_BEFORE_FLEET', attempts: 1, startedOn: [], exitCode: null });
      expect(r.error).toMatch(/^SIGNED_BEFORE_FLEET: /);
      expect(r.error).toContain(new Date(since).toISOString());
      expect(markers.ran(name)).toBe(false);
      expect(auditEvents(fenced.auditLog).filter((l) => l.event === 'exec_refused' && l.signedTask === `${runId}/t`)).toHaveLength(1);

      const goodRun = uniq('fresh');
      const good = uniq('freshjob');
      await world.queue.redis.zadd(RUNS_KEY, Date.now(), goodRun);
      await addJobByHand(world.queue.queueFor(goodRun), `${goodRun}-t`, jobData(goodRun, 't', markers.argv(good), alice, undefined, { to: fenced }));
      expect(await resultOf(goodRun, 't')).toMatchObject({ outcome: 'succeeded', exitCode: 0 });
      expect(markers.ran(good)).toBe(true);
    });
  });
});
