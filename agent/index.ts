/**
 * agent: composes gaxx-agent from its parts (transport, auth, service, registry, metrics,
 * profiling) after the start-up checks. main.ts is the only caller in production.
 */
import * as grpc from '@grpc/grpc-js';
import { dirname } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import { loadCertDir, secureContextOptions, type CertBundle } from '../certs/index.js';
import { GaxxError, isGaxxError, loadProtos, makeDirs, warmExecMethod, type FsHints } from '../proto/index.js';
import { AuditLog } from './audit/audit.js';
import { createAuthorizer, METRICS_POLICY, METRICS_SCRAPE } from './auth/auth.js';
import type { AgentConfig } from './config.js';
import { createHardening } from './transport/hardening.js';
import { createHealthService } from './observe/health.js';
import { detectIsolation } from './exec/limits.js';
import { AgentMetrics, startMetricsServer, type HttpListener, type MetricsGuards } from './observe/metrics.js';
import type { Injector } from './transport/ping-policer.js';
import { CertWatcher } from './auth/reload.js';
import { RevocationFloor } from './auth/revocation-floor.js';
import { StagedCertArea } from './files/cert-area.js';
import { sweepLeftovers } from './files/leftovers.js';
import { claimStateDir } from './files/state-lock.js';
import { startTransport, type AgentTransport } from './transport/server.js';
import { createAgentService, toServiceError } from './service.js';
import { TaskRegistry } from './exec/tasks.js';
import { startingTemplate } from './exec/exec.js';
import { REFILL_IDLE_MS } from './exec/launcher-protocol.js';
import { taskLaunch, taskSandbox, tasksRefusal } from './exec/task-launch.js';
import { collectGarbage } from './observe/collect-garbage.js';
import { agentDirs, DiskGuard, type VitalFile } from './observe/disk-guard.js';

export { defaultAuditLog, ignoredAgentEnv, loadAgentConfig, type AgentConfig } from './config.js';
export { runAuditCli } from './audit/audit-cli.js';

export interface RunningAgent {
  grpcPort: number;
  metricsPort: number | undefined;
  profilingPort: number | undefined;
  /** Stops accepting, lets running tasks finish up to the grace period, kills the rest. */
  stop(): Promise<void>;
}

/**
 * Refuses unsafe starts: root or profiling in production, and a cert dir that is missing,
 * insecure, expired, not signed by its CA, or not an agent-role certificate.
 */
export function preflight(config: AgentConfig, uid: number): CertBundle {
  refuseUnsafeStart(config, uid);
  const bundle = loadCertDir(config.certsDir);
  if (bundle.summary.identity.role !== 'agent') {
    throw new GaxxError('CERT_INVALID', `${config.certsDir}/cert.pem is a ${bundle.summary.identity.role} certificate, not an agent certificate`);
  }
  return bundle;
}

/** Root or profiling in production: refused before anything else happens. */
function refuseUnsafeStart(config: AgentConfig, uid: number): void {
  if (config.environment === 'production' && uid === 0) {
    throw new GaxxError('ROOT_REFUSED', 'gaxx-agent does not run as root in production; run it as an unprivileged user (or set GAXX_ENV=development)');
  }
  if (config.environment === 'production' && config.profilingListen) {
    throw new GaxxError('PROFILING_IN_PRODUCTION', 'profiling is available only with GAXX_ENV=development');
  }
}

/** Finished entries one expiry sweep must drop before the agent runs a full collection. */
const SWEEP_GC_ENTRIES = 500;

/**
 * A task registry whose life cycle feeds the metrics; `onJournalError`: its journal cannot be
 * written; `disk`: the disk guard, once there, told of a scratch work dir that could not be made.
 */
function meteredRegistry(
  config: AgentConfig,
  metrics: AgentMetrics,
  log: Logger,
  onJournalError: (e: NodeJS.ErrnoException) => void,
  disk: () => DiskGuard | undefined,
): TaskRegistry {
  return new TaskRegistry({
    capacity: config.capacity,
    retentionMs: config.taskRetentionMs,
    dataDir: config.dataDir,
    stateDir: config.stateDir,
    onStart: () => {
      metrics.started.inc();
      metrics.running.inc();
      metrics.loop.started();
    },
    onStarted: (warm) => (warm ? metrics.warmStarts.inc() : undefined),
    onExit: (exit) => {
      metrics.running.dec();
      metrics.loop.ended();
      const outcome = exit.reason || (exit.error ? 'spawn_error' : exit.signal ? 'signal' : exit.code === 0 ? 'success' : 'failure');
      metrics.execs.inc({ outcome });
      metrics.duration.observe(Number(exit.durationMs) / 1000);
    },
    // Not set up (its command never ran): the agent's failure, counted apart from the commands'.
    onRefused: (spec, failure) => {
      metrics.running.dec();
      metrics.loop.ended();
      metrics.execs.inc({ outcome: 'setup_failed' });
      log.warn({ taskId: spec.taskId, stage: failure.stage, errno: failure.errno }, `a task could not be set up: ${failure.message}`);
      if (spec.scratch === true && failure.stage === 'work dir') disk()?.tasksDirFailed(dirname(spec.cwd), failure.errno);
    },
    onOutput: (stream, n) => metrics.bytes.inc({ stream }, n),
    onCleanupFailed: (dir, e) =>
      log.warn(
        { dir, code: isGaxxError(e) ? e.code : 'INTERNAL', err: isGaxxError(e) ? e.message : String(e) },
        "a finished task's scratch dir could not be removed",
      ),
    // Thousands of entries gone at once: collect now, or an idle agent keeps them resident.
    onSweep: (count) => (count >= SWEEP_GC_ENTRIES ? collectGarbage() : undefined),
    onJournalError,
    onJournalSkipped: (lines, path) => log.warn({ lines, path }, 'unreadable lines of the task journal were skipped (torn by a crash or a full disk)'),
  });
}

/**
 * The guard over the agent's disk (observe/disk-guard.ts), with its audit log and task journal;
 * `late` is filled here, once both exist, for their writers' failure callbacks.
 */
function guardDisk(config: AgentConfig, log: Logger, audit: AuditLog, registry: TaskRegistry, late: { guard?: DiskGuard; files: VitalFile[] }): DiskGuard {
  const files: VitalFile[] = [{ what: 'audit log', path: audit.path, failure: () => audit.failure, retry: () => audit.retry() }];
  const journal = registry.journalPath;
  if (journal !== undefined) files.push({ what: 'task journal', path: journal, failure: () => registry.journalFailure, retry: () => registry.retryJournal() });
  const guard = new DiskGuard({ files, reserveDirs: agentDirs(config), reserveBytes: config.diskReserveBytes, log });
  late.guard = guard;
  late.files = files;
  // Failed before the guard existed (at start): told now.
  for (const f of files) {
    const e = f.failure();
    if (e) guard.failed(f, e);
  }
  return guard;
}

/** Metrics (when configured) and profiling (development only) listeners. */
async function startHttpListeners(
  config: AgentConfig,
  metrics: AgentMetrics,
  tlsOptions: SecureContextOptions,
  revoked: () => ReadonlySet<string>,
  metricsGuards: MetricsGuards,
): Promise<{ servers: HttpListener[]; metricsPort: number | undefined; profilingPort: number | undefined }> {
  const out: { servers: HttpListener[]; metricsPort: number | undefined; profilingPort: number | undefined } = {
    servers: [],
    metricsPort: undefined,
    profilingPort: undefined,
  };
  if (config.metricsListen) {
    const m = await startMetricsServer(metrics, config.metricsListen, tlsOptions, metricsGuards);
    out.servers.push(m.server);
    out.metricsPort = m.port;
  }
  if (config.profilingListen && config.environment === 'development') {
    // Loaded only here: development only, and it brings node:inspector and node:https.
    const { startProfilingServer } = await import('./observe/profiling.js');
    const p = await startProfilingServer(config.profilingListen, tlsOptions, revoked);
    out.servers.push(p.server);
    out.profilingPort = p.port;
  }
  return out;
}

/** Graceful gRPC shutdown; idle client connections may never close on their own, so force after 1 s. */
function shutdownGrpc(server: grpc.Server): Promise<void> {
  return new Promise<void>((r) => {
    const t = setTimeout(() => {
      server.forceShutdown();
      r();
    }, 1000);
    server.tryShutdown(() => {
      clearTimeout(t);
      r();
    });
  });
}

/** Watches the cert dir: a verified new bundle reaches new connections; every outcome is audited. */
function watchCerts(
  config: AgentConfig,
  initial: CertBundle,
  log: Logger,
  audit: AuditLog,
  load: (dir: string) => CertBundle,
  apply: (b: CertBundle) => void,
): CertWatcher {
  const watcher = new CertWatcher(config.certsDir, initial, {
    pollMs: config.certPollMs,
    load,
    onReload: (next) => {
      apply(next);
      const s = next.summary;
      log.info({ serial: s.serial, notAfter: s.notAfter.toISOString(), revoked: next.revoked.size, cas: next.cas.length }, 'certificates reloaded');
      audit.write({ event: 'cert_reload', ok: true, serial: s.serial, notAfter: s.notAfter.toISOString(), revoked: next.revoked.size, cas: next.cas.length });
    },
    onError: (e) => {
      const code = isGaxxError(e) ? e.code : 'INTERNAL';
      log.warn({ code }, 'cert dir changed but does not verify; keeping the current certificates');
      audit.write({ event: 'cert_reload', ok: false, code, detail: isGaxxError(e) ? e.message.slice(0, 300) : undefined });
    },
  });
  watcher.start();
  return watcher;
}

/** The fix for a dir or file of the agent's that it cannot make or open (main.ts, and its dirs here). */
export const AGENT_FILE_HINTS: FsHints = {
  access: 'create it for the agent user (install -d -o gx -m 0700 DIR) or point --data-dir / --audit-log / --state-dir elsewhere',
  elsewhere: 'point --data-dir / --audit-log / --state-dir elsewhere',
};

/** Starts every listener of the agent, holding its state dir (files/state-lock.ts) until it stops. */
export async function startAgent(config: AgentConfig, opts: { version: string; log: Logger; uid: number }): Promise<RunningAgent> {
  refuseUnsafeStart(config, opts.uid);
  makeDirs(config.stateDir, { mode: 0o700, hint: AGENT_FILE_HINTS });
  const claim = claimStateDir(config.stateDir);
  try {
    const agent = await startClaimed(config, opts);
    return {
      ...agent,
      stop: () => agent.stop().finally(() => claim.release()),
    };
  } catch (e) {
    claim.release();
    throw e;
  }
}

async function startClaimed(config: AgentConfig, opts: { version: string; log: Logger; uid: number }): Promise<RunningAgent> {
  const { log } = opts;
  // The host probes (prlimit, systemd-run, bwrap) are child processes: started first, they run
  // beside the certificate checks below, and beside each other, instead of one after another
  // (neither ever rejects).
  const probes = Promise.all([detectIsolation({ prefer: config.taskLimits.isolation }), taskSandbox(config)]);
  const floor = new RevocationFloor(config.stateDir);
  const start = floor.atStart(preflight(config, opts.uid));
  const initial = start.bundle;
  makeDirs(config.dataDir, { mode: 0o700, hint: AGENT_FILE_HINTS });
  const leftovers = sweepLeftovers(config);
  if (leftovers.length > 0) log.info({ removed: leftovers }, 'removed what an earlier run of this agent left mid-write (upload parts, stage dirs, temp files)');
  // The disk guard hears of a failed write through `late` (it needs the log and the journal first).
  const late: { guard?: DiskGuard; files: VitalFile[] } = { files: [] };
  const told = (what: string) => (e: NodeJS.ErrnoException) => {
    const f = late.files.find((x) => x.what === what);
    if (late.guard && f) late.guard.failed(f, e);
  };
  const audit = AuditLog.open(config.auditLog, {}, Date.now, told('audit log'));
  if (start.rolledBack) {
    log.warn({ code: 'REVOCATION_ROLLBACK' }, 'the cert dir holds an older revocation list than this agent has seen; enforcing the newest');
    audit.write({ event: 'cert_reload', ok: false, code: 'REVOCATION_ROLLBACK', detail: 'at start: enforcing the newest revocation list seen' });
  }
  const [isolation, sandbox] = await probes;
  const launch = taskLaunch(config, sandbox, opts.uid, log);
  const metrics = new AgentMetrics(opts.version);
  // Filled once listening; a reload before that only updates the watcher's bundle.
  const live: { transport?: AgentTransport; https: HttpListener[] } = { https: [] };
  const watcher = watchCerts(
    config,
    initial,
    log,
    audit,
    (dir) => floor.check(loadCertDir(dir)),
    (next) => {
      const options = secureContextOptions(next);
      live.transport?.setSecureContext(options);
      for (const s of live.https) s.setSecureContext(options);
    },
  );
  const bundle = () => watcher.current();
  const revoked = () => bundle().revoked;
  const registry = meteredRegistry(config, metrics, log, told('task journal'), () => late.guard);
  const disk = guardDisk(config, log, audit, registry, late);
  const auth = createAuthorizer(revoked, (reason, rpc) => {
    metrics.authFailures.inc({ reason });
    log.warn({ reason, rpc }, 'call refused');
  });
  const guards = createHardening({
    guards: config.guards,
    registry: metrics.registry,
    log,
    audit,
    token: config.token,
    authorize: (call, method) => auth.authorize(call, method),
    onHandshakeFailure: () => metrics.handshakeFailures.inc(),
  });
  let serving = true;
  const server = new grpc.Server({
    ...guards.grpcOptions,
    'grpc.max_receive_message_length': config.maxMessageBytes,
    'grpc.max_send_message_length': Math.max(config.maxMessageBytes, 4 * 1024 * 1024),
    interceptors: [guards.interceptor],
  });
  const { agent, health } = loadProtos();
  const confine = { limits: config.taskLimits, isolation };
  const refuseTasks = tasksRefusal(config, launch.sandbox);
  server.addService(
    agent.gaxx.agent.v1.Agent.service,
    createAgentService({
      config,
      registry,
      auth,
      bundle,
      version: opts.version,
      startedAt: Date.now(),
      log,
      serving: () => serving,
      confine,
      audit,
      blockedPeers: guards.blockedPeers,
      launch,
      refuseTasks,
      disk,
      certArea: new StagedCertArea(
        config.certsDir,
        config.stateDir,
        (dir) => floor.check(loadCertDir(dir)),
        () => floor.newestText(),
        (name, e) => {
          audit.write({ event: 'cert_reload', ok: false, code: isGaxxError(e) ? e.code : 'INTERNAL', detail: `push of ${name} refused` });
        },
        () => void watcher.check(),
      ),
      // No call is served before the transport listens, so the port is known by then.
      listenPort: () => live.transport?.port ?? 0,
    }),
  );
  server.addService(
    health.grpc.health.v1.Health.service,
    // Not serving either while tasks cannot get a work dir (a scheduler's breaker stays open).
    createHealthService(
      () => serving && disk.tasksWritable(),
      (e) => toServiceError(e, log),
    ),
  );
  // The bundle in force now (a rotation may have landed since preflight).
  const tlsOptions = secureContextOptions(bundle());
  const hooks = { ...guards.transportHooks, onInjector: (i: Injector) => guards.policePings(i) };
  const transport = await startTransport(server, config.listen, tlsOptions, hooks, config.guards.handshakeTimeoutMs);
  live.transport = transport;
  audit.write({
    event: 'agent_started',
    version: opts.version,
    isolation: isolation.kind,
    serial: initial.summary.serial,
    sandbox: launch.sandbox.kind,
    sandboxDetail: launch.sandbox.detail,
    unsafeNoIsolation: config.unsafeNoIsolation || undefined,
  });
  // Its first line cannot be written: a start on a full disk is refused, saying so (main.ts:
  // fileAccessError), as when the journal cannot be written anew at start (TaskRegistry).
  const unwritten = audit.failure ?? registry.journalFailure;
  if (unwritten) {
    disk.stop();
    watcher.stop();
    await transport.close();
    transport.destroyAll();
    throw unwritten;
  }
  const metricsAuth = createAuthorizer(revoked, (reason) => metrics.authFailures.inc({ reason }), METRICS_POLICY);
  const metricsGuards: MetricsGuards = {
    hooks: guards.transportHooks,
    handshakeTimeoutMs: config.guards.handshakeTimeoutMs,
    authorize: (cert) => metricsAuth.authorize({ getAuthContext: () => ({ sslPeerCertificate: cert }) } as never, METRICS_SCRAPE),
    onDenied: (peer, code) => {
      guards.blocker.recordFailure(peer, 'auth');
      audit.write({ event: 'auth_denied', peer, method: METRICS_SCRAPE, code });
    },
  };
  const http = await startHttpListeners(config, metrics, tlsOptions, revoked, metricsGuards);
  live.https.push(...http.servers);
  // Logged once listening: a refused start stays one line.
  log.info({ isolation: isolation.kind, detail: isolation.detail, sandbox: launch.sandbox.kind, sandboxDetail: launch.sandbox.detail }, 'task isolation');
  if (refuseTasks) log.error({ code: refuseTasks.code }, refuseTasks.message);
  else if (launch.sandbox.kind === 'none')
    log.warn({ unsafeNoIsolation: config.unsafeNoIsolation }, "tasks run WITHOUT isolation, with the agent's privileges");
  // An agent that runs tasks has its launcher up before the first one comes (once listening:
  // the start itself does not wait for it).
  if (!refuseTasks) launch.runner.prepare(startingTemplate(launch, confine));
  // Exec's message code is built a quiet moment after the start, as the launcher's sandboxes are
  // (proto/warm-codecs.ts), not by the first task: a task that comes first builds it, as before.
  // Only ever a head start: a sample the codecs refuse costs a warning, never the agent.
  const warmCodecs = setTimeout(() => {
    try {
      warmExecMethod(agent.gaxx.agent.v1.Agent.service.Exec);
    } catch (e) {
      log.warn({ err: (e as Error).message }, "Exec's message code was not built ahead: the first task builds it");
    }
  }, REFILL_IDLE_MS);
  warmCodecs.unref();
  return {
    grpcPort: transport.port,
    metricsPort: http.metricsPort,
    profilingPort: http.profilingPort,
    async stop() {
      serving = false;
      clearTimeout(warmCodecs);
      watcher.stop();
      disk.stop();
      await transport.close();
      await registry.shutdown(config.shutdownGraceMs);
      launch.runner.close();
      await shutdownGrpc(server);
      transport.destroyAll();
      for (const s of http.servers) s.closeAllConnections();
      await Promise.all(http.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      audit.close();
    },
  };
}
