#!/usr/bin/env node
/**
 * gaxx-agent entry point: config from flags and env, start-up checks, listeners, and graceful
 * shutdown on SIGTERM/SIGINT. A refused start prints one line on stderr and exits with the
 * code's documented exit status.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { closeInheritedFds, fdLogDestination, colonFirstIpChecks, exitCodeFor, fileAccessError, isGaxxError, packageVersion } from '../proto/index.js';
import { AGENT_FILE_HINTS, defaultAuditLog, ignoredAgentEnv, loadAgentConfig, runAuditCli, startAgent } from './index.js';

const USAGE = `usage: gaxx-agent --certs DIR [options]   (each flag also as GAXX_AGENT_<FLAG>, e.g. GAXX_AGENT_DATA_DIR; one no flag reads is named in a warning at start)
  --listen ADDR:PORT            gRPC over mTLS (default 0.0.0.0:8088)
  --certs DIR                   cert.pem, key.pem (0600), ca.pem, optional revoked.json
  --data-dir DIR                task work dirs and files (default ~/.local/state/gaxx-agent)
  --metrics-listen ADDR:PORT    Prometheus over mTLS, e.g. 0.0.0.0:9091 (default off)
  --profiling-listen ADDR:PORT  CPU/heap profiles over mTLS, GAXX_ENV=development only (default off)
  --capacity N                  concurrent tasks (default 16)
  --default-timeout DURATION    per task when the request gives none (default 1h, at most 168h)
  --task-retention DURATION     how long a finished task's result is held for attach and replay
                                (default 10m, at least 1s); a signed task's id then stays spent
                                until its signature expires
  --default-output-cap SIZE     stdout+stderr per task when the request gives none (default 16MiB, at most 64MiB)
  --max-message-bytes SIZE      largest inbound gRPC message (default 4MiB)
  --shutdown-grace DURATION     how long running tasks may finish on SIGTERM (default 10s)
  --audit-log PATH              JSON-lines audit log, 0600 (default beside the data dir: <data-dir>-audit/audit.log)
  --cert-poll DURATION          stat poll of the cert dir besides fs.watch (default 30s)
  --guards JSON                 connection/call/rate limits and blocking, e.g. '{"block":{"threshold":10}}'
  --task-limits JSON            per-task limits, e.g. '{"cpuSeconds":3600,"addressSpaceBytes":4294967296,"processes":1024}'
  --state-dir DIR               the agent's own state (the task journal kept across restarts), outside the data dir and
                                hidden from tasks (default beside the data dir: <data-dir>-state)
  --bwrap PATH                  bubblewrap, the task sandbox (default /usr/bin/bwrap)
  --warm-sandboxes N            sandboxes kept started ahead of tasks (from a second after the
                                start on), so a task need not wait for its own (default 2; 0: none).
                                Used by tasks with a scratch work dir.
  --task-writable DIR[:DIR]     dirs tasks may write besides their work dir (default none; / is read-only);
                                none may hold or lie in the agent's data, cert, state or audit log dir
  --task-hidden DIR[:DIR]       more dirs tasks see empty, besides the agent's own dirs and its user's home
                                (hidden unless it holds the data dir); none may hold the data dir
  --fleet-since MS              when this agent's fleet was created, in Unix ms (gaxx spawn passes it): work
                                signed before then is refused (SIGNED_BEFORE_FLEET), as a replay of an earlier
                                fleet's of the same name (default: no such check)
  --disk-reserve SIZE           free space the file systems of the data dir, state dir and audit log must keep
                                for a task or a PutFile to start (default 32MiB; 0: no check): room for the
                                audit log and task journal, which the agent will not work without
  --unsafe-no-isolation         run tasks WITHOUT a sandbox, with the agent's privileges (audited at start);
                                without it, a production agent on a host that cannot sandbox refuses tasks
GAXX_AGENT_TOKEN=<64 hex or 43 base64url chars>  optional bearer token every call must present
GAXX_ENV=production (default) | development
       gaxx-agent audit [--since 1h] [--json] [--file PATH]   print the audit log
`;

const AUDIT_USAGE = `usage: gaxx-agent audit [--since DURATION|TIME] [--json] [--file PATH]
  Prints the agent's audit log (rotated files included, oldest first).
  --since 1h        only records from the last hour (30m, 2d, or an ISO time)
  --json            the stored JSON lines instead of readable lines
  --file PATH       another audit log (default: GAXX_AGENT_AUDIT_LOG, else <data-dir>-audit/audit.log)
`;

/** `gaxx-agent audit [--since 1h] [--json] [--file PATH]`: the audit log, readably. */
function auditCommand(args: string[]): number {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(AUDIT_USAGE);
    return 0;
  }
  const env = process.env;
  const dataDir = env.GAXX_AGENT_DATA_DIR || join(env.HOME || '/var/lib', '.local/state/gaxx-agent');
  const path = env.GAXX_AGENT_AUDIT_LOG || defaultAuditLog(dataDir);
  return runAuditCli(args, path, { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) });
}

async function main(): Promise<void> {
  if (process.argv[2] === 'audit') {
    process.exitCode = auditCommand(process.argv.slice(3));
    return;
  }
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  // Before anything is started: descriptors left open by whatever started the agent would reach
  // the launcher, and from it every task.
  const inherited = closeInheritedFds();
  // grpc-js (the server's) and tls ask node:net of addresses: skip Node's IPv6 pattern for IPv4 ones.
  colonFirstIpChecks();
  const config = loadAgentConfig({ argv: process.argv.slice(2), env: process.env });
  // A stderr that cannot take the logs (a full disk, /dev/full) drops them: the agent goes on
  // serving, hears its signals, and its exit code says it (log-destination.ts).
  const logTo = fdLogDestination(2);
  const log = pino({ base: { component: 'agent' } }, logTo);
  const agent = await startAgent(config, { version: packageVersion(fileURLToPath(import.meta.url)) ?? '0.0.0', log, uid: process.getuid?.() ?? -1 });
  log.info(
    {
      grpcPort: agent.grpcPort,
      metricsPort: agent.metricsPort ?? null,
      profilingPort: agent.profilingPort ?? null,
      environment: config.environment,
      // Signed work from before this moment is refused (SIGNED_BEFORE_FLEET): said, for whoever reads such a refusal.
      ...(config.fleetSinceUnixMs !== undefined ? { fleetSince: new Date(config.fleetSinceUnixMs).toISOString() } : {}),
      // Descriptors it was started with, closed so that no task gets them (said here: a refused start prints one line).
      ...(inherited.length > 0 ? { inheritedFdsClosed: inherited } : {}),
    },
    'agent listening',
  );
  const ignored = ignoredAgentEnv(process.env);
  if (ignored.length > 0) log.warn({ ignoredEnv: ignored }, 'environment variables that no agent setting reads (misspelt?): ignored; see gaxx-agent --help');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'agent stopping');
    // However stop() fares, the agent is gone shortly after its grace (clients holding
    // connections open cannot keep it alive).
    setTimeout(() => process.exit(1), config.shutdownGraceMs + 5000).unref();
    agent.stop().then(
      () => process.exit(logTo.failed ? exitCodeFor('FILE_ACCESS') : 0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  // A data dir, audit log or cert dir it cannot create or read: name the path and the fix.
  // A full, over-quota or read-only file system gets its own fix (fileAccessError), not this one.
  const e = fileAccessError(err, AGENT_FILE_HINTS) ?? err;
  if (isGaxxError(e)) {
    process.stderr.write(`gaxx-agent: ${e.code}: ${e.message}\n`);
    process.exit(exitCodeFor(e.code));
  }
  process.stderr.write(`gaxx-agent: INTERNAL: unexpected error (a bug): ${(e as Error)?.message ?? String(e)}\n`);
  process.exit(70);
});
