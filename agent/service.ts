/**
 * The Agent service (the call guard has authorized each call by the RPC policy table): validate
 * the request once (zod), then hand it to the task registry or the file code. GaxxErrors become
 * gRPC statuses with the gaxx code in trailing metadata; anything else is INTERNAL without details (never a stack on the wire).
 */
import * as grpc from '@grpc/grpc-js';
import { hostname, loadavg } from 'node:os';
import type { Logger } from 'pino';
import { describeIdentity, type CertBundle, type Identity } from '../certs/index.js';
import { GaxxError, SLOTS_FULL, type AgentHandlers, type ExecEvent, type ExecRequest__Output, type BlockedPeer, type InfoResponse } from '../proto/index.js';
import { argv0Of, argvSha256 } from './audit/audit-events.js';
import type { AuditLog } from './audit/audit.js';
import type { Authorizer } from './auth/auth.js';
import { admitExec, auditExecRefusal } from './auth/signed-work.js';
import { peerAddress } from './transport/conn-limits.js';
import type { AgentConfig } from './config.js';
import type { ExecSpec, LaunchContext } from './exec/exec.js';
import { receivePut, sendFile } from './files/files.js';
import type { StagedCertArea } from './files/cert-area.js';
import type { Confinement } from './exec/limits.js';
import { renewalDueWithJitter } from './auth/reload.js';
import type { DiskGuard } from './observe/disk-guard.js';
import type { Task, TaskEvent } from './exec/task.js';
import type { TaskRegistry } from './exec/tasks.js';
import { execSpec, parse, taskIdSchema } from './exec/exec-request.js';
import { toServiceError } from './service-errors.js';

export { toServiceError } from './service-errors.js';

export interface ServiceDeps {
  config: AgentConfig;
  registry: TaskRegistry;
  auth: Authorizer;
  /** The agent's current certificate bundle (rotation replaces it). */
  bundle: () => CertBundle;
  version: string;
  startedAt: number;
  log: Logger;
  /** False once the agent drains: new tasks are refused, attach and replay still work. */
  serving: () => boolean;
  /** Per-task limits and how they are applied. */
  confine?: Confinement | undefined;
  audit?: AuditLog | undefined;
  /** How tasks are started (launcher, sandbox). */
  launch?: LaunchContext | undefined;
  /**
   * The agent's disk: new work is refused while its audit log or journal cannot be written, and a
   * task or put while the disk is under its reserve (observe/disk-guard.ts).
   */
  disk?: DiskGuard | undefined;
  /** Set when this agent may not run tasks (no isolation in production): every new Exec gets it. */
  refuseTasks?: GaxxError | undefined;
  /** The cert area: staged pushes and renewal requests. */
  certArea?: StagedCertArea | undefined;
  /** Addresses the guards block now. */
  blockedPeers?: () => BlockedPeer[];
  /** The port the gRPC listener is bound to (a signed target names host:port). */
  listenPort: () => number;
}

/** Who made a call, for the audit log. */
function whoCalled(call: { getPeer(): string }, id: Identity): { peer: string; identity: string } {
  return { peer: peerAddress(call.getPeer()), identity: describeIdentity(id) };
}

/**
 * Audits a task's start once its process has a pid, and its end when it comes (never its env,
 * stdin or output). A task the launcher starts has no pid until the launcher says so (its
 * Started event): the start is written then, with the pid, not when the request was admitted
 * (0 before). A start that failed is written with pid 0, and always before the end. A task the
 * agent could not set up is `exec_refused` with the code its Exec ended with (after the start of
 * its process, when one had started: a sandbox that then failed).
 */
function auditExec(audit: AuditLog | undefined, who: { peer: string; identity: string }, req: ExecRequest__Output, spec: ExecSpec, task: Task): void {
  if (!audit) return;
  const base = { ...who, taskId: spec.taskId, argv0: argv0Of(spec.argv), argvSha256: argvSha256(spec.argv) };
  let written = false;
  const started = (pid: number): void => {
    if (written) return;
    written = true;
    audit.write({ event: 'exec_started', ...base, pid });
  };
  if (task.pid > 0) started(task.pid);
  else {
    const onEvent = (ev: TaskEvent): void => {
      if (!ev.started && !ev.exit && !ev.refused) return;
      task.listeners.delete(onEvent);
      // Refused: written once it is done (below).
      if (!ev.refused) started(ev.started?.pid ?? task.pid);
    };
    task.listeners.add(onEvent);
  }
  void task.done().then(() => {
    if (task.refusal) {
      if (task.pid > 0) started(task.pid);
      auditExecRefusal(audit, who, req, task.refusal.code);
      return;
    }
    const e = task.exit;
    started(task.pid);
    if (!e) return;
    audit.write({
      event: 'exec_finished',
      ...base,
      code: e.code,
      signal: e.signal || undefined,
      reason: e.reason || undefined,
      outputCapped: e.outputCapped || undefined,
      durationMs: Number(e.durationMs),
    });
  });
}

/** Retry hint sent with a capacity refusal (the scheduler's busy wait reads it). */
const BUSY_RETRY_AFTER_MS = 50;

/** Serves one Exec call: attach, replay, or a new run. */
function serveExec(call: grpc.ServerWritableStream<ExecRequest__Output, ExecEvent>, d: ServiceDeps): void {
  const id = d.auth.identity(call);
  const taskId = parse(taskIdSchema, call.request.taskId);
  const who = whoCalled(call, id);
  const checked = admitExec(call.request, id, { bundle: d.bundle, port: d.listenPort, fleetSince: d.config.fleetSinceUnixMs }, d.audit, who);
  // Meant for another agent's journal (the caller sent this task to an agent this one replaced):
  // nothing is started, attached to or replayed here, so the caller can tell what it may not know.
  const meantFor = call.request.journalId;
  if (meantFor && meantFor !== d.registry.journalId) {
    auditExecRefusal(d.audit, who, call.request, 'AGENT_REPLACED');
    throw new GaxxError(
      'AGENT_REPLACED',
      `this request is meant for the agent with journal ${meantFor.slice(0, 64)}; this agent's journal is ${d.registry.journalId}`,
      {
        details: { notStarted: true },
      },
    );
  }
  const existing = d.registry.get(taskId);
  const listener = (ev: TaskEvent) => {
    // Not set up: its command never ran; the call ends with why (marked not started), not an exit.
    if (ev.refused) call.emit('error', toServiceError(ev.refused, d.log));
    else {
      call.write(ev);
      if (ev.exit) call.end();
    }
  };
  if (existing) {
    // Attach and replay only for the very spec the task was started for.
    if (existing.specKey !== checked.digest) {
      auditExecRefusal(d.audit, who, call.request, 'TASK_SPEC_MISMATCH');
      throw new GaxxError('TASK_SPEC_MISMATCH', `task ${taskId} exists with a different spec`);
    }
    const replayed = !existing.running;
    // From its start when the replay buffer dropped none of its output: the caller can skip what it showed.
    call.write({ started: { pid: existing.pid, attached: !replayed, replayed, fromStart: !existing.dropped, journalId: d.registry.journalId } });
    for (const ev of existing.replayEvents()) call.write(ev);
    if (replayed) call.end();
    else {
      existing.listeners.add(listener);
      call.on('cancelled', () => existing.listeners.delete(listener));
    }
    return;
  }
  // Ran here once and forgotten: not run again, and not "never started" to a caller asking only for its end.
  const spentUntil = d.registry.spentUntil(taskId);
  if (spentUntil !== undefined) {
    auditExecRefusal(d.audit, who, call.request, 'ALREADY_EXISTS');
    throw new GaxxError(
      'ALREADY_EXISTS',
      `task ${taskId} already ran here and its result is no longer held; signed work runs once per task id until its signature expires (${new Date(spentUntil).toISOString()})`,
    );
  }
  // Asked for the end of a task that may never have started here: it did not, so it never will.
  if (call.request.existingOnly) throw new GaxxError('NOT_FOUND', `no task ${taskId} here (not started, or its result is no longer held)`);
  // Not started here: the scheduler may run it on another agent at once.
  if (!d.serving()) throw new GaxxError('UNAVAILABLE', 'agent is shutting down', { details: { notStarted: true } });
  if (d.refuseTasks) throw d.refuseTasks;
  // A task the audit log or journal cannot record does not run (fail closed).
  const diskRefusal = d.disk?.workRefusal();
  if (diskRefusal) throw diskRefusal;
  const spec = execSpec(call.request, d.config, d.confine, d.launch);
  // The hint: a slot of a full agent frees when some task ends; ask again soon, not at once.
  if (!d.registry.hasRoom())
    throw new GaxxError('RESOURCE_EXHAUSTED', `agent is running ${d.registry.capacity} tasks, its capacity`, {
      details: { retryAfterMs: BUSY_RETRY_AFTER_MS, refusal: SLOTS_FULL },
    });
  const task = d.registry.start(spec, listener, checked.digest, checked.expiresAtUnixMs);
  // The journal could not record it (a disk that filled since the check): not started, with why.
  if (!task)
    throw (
      d.disk?.workRefusal() ??
      new GaxxError('UNAVAILABLE', `task ${taskId} not started: the agent's task journal could not be written`, { details: { notStarted: true } })
    );
  auditExec(d.audit, who, call.request, spec, task);
  // A caller that goes away leaves the task running, so a retry can attach to it.
  call.on('cancelled', () => task.listeners.delete(listener));
}

function info(d: ServiceDeps): InfoResponse {
  const b = d.bundle();
  const id = b.summary.identity;
  return {
    version: d.version,
    hostname: hostname(),
    uid: process.getuid?.() ?? -1,
    capacity: d.registry.capacity,
    runningTasks: d.registry.running,
    loadAverage: loadavg(),
    certNotAfterUnixMs: b.summary.notAfter.getTime(),
    certSerial: b.summary.serial,
    certRenewalDue: renewalDueWithJitter(b.cert, hostname()),
    fleet: id.role === 'agent' ? id.fleet : '',
    host: id.role === 'agent' ? id.host : '',
    environment: d.config.environment,
    uptimeMs: Date.now() - d.startedAt,
    blockedPeers: d.blockedPeers?.() ?? [],
    tasksStartedTotal: d.registry.startedTotal,
    journalId: d.registry.journalId,
  };
}

/** Writes `msg`, resolving once the stream can take more (so a slow reader does not fill memory). */
function writeWithBackpressure<T>(call: grpc.ServerWritableStream<unknown, T>, msg: T): Promise<void> {
  const gone = () => new GaxxError('CANCELLED', 'the caller went away');
  if (call.cancelled) return Promise.reject(gone());
  if (call.write(msg)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const settle = (cancelled: boolean) => () => {
      call.off('drain', onDrain);
      call.off('cancelled', onCancel);
      if (cancelled) reject(gone());
      else resolve();
    };
    const onDrain = settle(false);
    const onCancel = settle(true);
    call.on('drain', onDrain);
    call.on('cancelled', onCancel);
  });
}

/** The Agent service handlers. */
export function createAgentService(d: ServiceDeps): AgentHandlers {
  const fail = (e: unknown) => toServiceError(e, d.log);
  return {
    Exec(call) {
      try {
        serveExec(call, d);
      } catch (e) {
        call.emit('error', fail(e));
      }
    },
    Cancel(call, cb) {
      try {
        const id = d.auth.identity(call);
        const taskId = parse(taskIdSchema, call.request.taskId);
        // A scheduler may stop only the signed work it could have started (see RPC_POLICY).
        const task = d.registry.get(taskId);
        if (task && task.onceUntil === undefined && id.role !== 'operator') {
          d.audit?.write({ event: 'task_cancel', ...whoCalled(call, id), taskId, found: false, refused: 'unsigned task' });
          throw new GaxxError('PERMISSION_DENIED', `a ${id.role} may cancel only signed tasks: ${taskId} was started by an operator without a signature`);
        }
        const found = d.registry.cancel(taskId);
        // Not running, but its result is held: the caller can have it replayed, not a guess.
        const finished = !found && d.registry.get(taskId)?.running === false;
        d.audit?.write({ event: 'task_cancel', ...whoCalled(call, id), taskId, found });
        cb(null, { found, finished });
      } catch (e) {
        cb(fail(e));
      }
    },
    PutFile(call, cb) {
      let id: Identity;
      try {
        id = d.auth.identity(call);
      } catch (e) {
        cb(fail(e));
        return;
      }
      const full = d.disk?.workRefusal();
      if (full) {
        cb(fail(full));
        return;
      }
      const areas = { dataDir: d.config.dataDir, certsDir: d.config.certsDir, certs: d.certArea };
      receivePut(call, areas, id.role === 'operator').then(
        (r) => {
          d.audit?.write({ event: 'file_put', ...whoCalled(call, id), path: r.path ?? '', sha256: r.sha256 ?? '', size: Number(r.size) });
          cb(null, r);
        },
        (e: unknown) => cb(fail(e)),
      );
    },
    GetFile(call) {
      let header: { size?: unknown; sha256?: string } | null | undefined;
      // A caller gone (or past its deadline) stops the reading and hashing, not only the sending.
      const gone = new AbortController();
      call.on('cancelled', () => gone.abort());
      Promise.resolve()
        .then(() => d.auth.identity(call))
        .then(async (id) => {
          // A read the audit log cannot record is not served either.
          const unwritten = d.disk?.writesRefusal();
          if (unwritten) throw unwritten;
          await sendFile(
            d.config.dataDir,
            call.request.path,
            (c) => {
              if (c.header) header = c.header;
              return writeWithBackpressure(call, c);
            },
            gone.signal,
          );
          d.audit?.write({ event: 'file_get', ...whoCalled(call, id), path: call.request.path, sha256: header?.sha256 ?? '', size: Number(header?.size ?? 0) });
        })
        .then(
          () => call.end(),
          (e: unknown) => call.emit('error', fail(e)),
        );
    },
    CreateCsr(call, cb) {
      Promise.resolve()
        .then(async () => {
          const id = d.auth.identity(call);
          if (!d.certArea) throw new GaxxError('FAILED_PRECONDITION', 'this agent takes no renewals');
          const unwritten = d.disk?.writesRefusal();
          if (unwritten) throw unwritten;
          const csrPem = await d.certArea.createCsr(`gaxx-agent ${hostname()}`);
          d.audit?.write({ event: 'csr_created', ...whoCalled(call, id) });
          return { csrPem };
        })
        .then(
          (r) => cb(null, r),
          (e: unknown) => cb(fail(e)),
        );
    },
    Info(call, cb) {
      try {
        cb(null, info(d));
      } catch (e) {
        cb(fail(e));
      }
    },
  };
}
