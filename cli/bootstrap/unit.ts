/**
 * How the agent is kept running on a host: a systemd unit (shipped as
 * cli/bootstrap/systemd/gaxx-agent.service for installing by hand; a test keeps the two equal),
 * or, on hosts without systemd, a supervisor loop started as gx with no new privileges and no
 * capabilities that restarts the agent when it fails, as Restart=on-failure would.
 */
import { AGENT_ENV } from '../providers/agent-bundle.js';
import { AGENT_USER, LOG_DIR, SUPERVISOR, SUPERVISOR_PID, agentArgs } from './layout.js';

/** AGENT_ENV as lines of `prefix`K=V (the values are plain words: no quoting needed). */
function envLines(prefix: string): string {
  return Object.entries(AGENT_ENV)
    .map(([k, v]) => `${prefix}${k}=${v}`)
    .join('\n');
}

/**
 * The systemd unit for the agent, with `nodePath` as the interpreter, for a fleet created at
 * `fleetSince` (Unix ms; none: the unit shipped for installing by hand).
 */
export function renderAgentUnit(nodePath: string, fleetSince?: number): string {
  return `# gaxx-agent: the gaxx fleet agent (gRPC over mTLS on :8088, metrics on :9091).
# Installed by 'gaxx spawn'; to install by hand see docs/bootstrap.md.
[Unit]
Description=gaxx agent
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${AGENT_USER}
Group=${AGENT_USER}
Environment=GAXX_ENV=production
${envLines('Environment=')}
ExecStart=${[nodePath, ...agentArgs(fleetSince)].join(' ')}
Restart=on-failure
RestartSec=2s
TimeoutStopSec=30s
KillMode=control-group
UMask=0077
# No privileges: never root, no capabilities, nothing gained through exec.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
RestrictSUIDSGID=yes
LockPersonality=yes
# The file system is read-only but for the agent's own state and log directories.
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
StateDirectory=gaxx
StateDirectoryMode=0700
LogsDirectory=gaxx
LogsDirectoryMode=0700

[Install]
WantedBy=multi-user.target
`;
}

/** The supervisor script for hosts without systemd (run as gx by the start command below); `fleetSince` as for the unit. */
export function renderSupervisor(nodePath: string, fleetSince?: number): string {
  const cmd = [nodePath, ...agentArgs(fleetSince)].map((a) => `'${a}'`).join(' ');
  return `#!/bin/sh
# gaxx-agent supervisor for hosts without systemd: restarts the agent when it fails.
export GAXX_ENV=production
${envLines('export ')}
umask 077
while :; do
  ${cmd}
  rc=$?
  [ "$rc" -eq 0 ] && exit 0
  echo "gaxx-agent exited with $rc; restarting in 2 s" >&2
  sleep 2
done
`;
}

/**
 * Shell that sets `sup` to the process group of the supervisor that `pidFile` names, or to
 * nothing when it names none: a pid file left by a supervisor that died (a reboot clears /run, a
 * kill does not) may name a pid another process has been given since, and the scripts that stop
 * the supervisor signal that whole group, as root when bootstrap starts a new one. The group is
 * the supervisor's when its leader still runs `script`, or when the leader is gone and the group
 * lives on (Linux gives no process the pid of a group that still has members).
 */
export function supervisorGroupShell(pidFile = SUPERVISOR_PID, script = SUPERVISOR): string {
  return [
    `sup=$(cat '${pidFile}' 2>/dev/null || true)`,
    'case "$sup" in "" | *[!0-9]*) sup= ;; esac',
    `if [ -n "$sup" ]; then if [ -e "/proc/$sup" ]; then tr '\\0' ' ' <"/proc/$sup/cmdline" 2>/dev/null | grep -qF -- '${script}' || sup=; elif ! kill -0 -"$sup" 2>/dev/null; then sup=; fi; fi`,
  ].join('\n');
}

/**
 * Shell (run as root) that stops a previous supervisor and starts the new one as gx in its own
 * session: no new privileges, every capability dropped, output to the log dir.
 */
export function supervisorStartScript(supervisor: string): string {
  return [
    supervisorGroupShell(SUPERVISOR_PID, supervisor),
    'if [ -n "$sup" ]; then kill -TERM -"$sup" 2>/dev/null || true; fi',
    `setsid sh -c 'echo $$ > ${SUPERVISOR_PID}; exec setpriv --reuid=${AGENT_USER} --regid=${AGENT_USER} --init-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- /bin/sh ${supervisor}' >>${LOG_DIR}/agent.log 2>&1 </dev/null &`,
  ].join('\n');
}
