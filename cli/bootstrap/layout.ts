/** Where bootstrap puts things on a fleet host; one place, so unit, scripts and docs agree. */
import { agentNodeFlags, fleetSinceArgs } from '../providers/agent-bundle.js';

/** The unprivileged user the agent runs as: no sudo, no password. */
export const AGENT_USER = 'gx';
/** The agent's code (root-owned, read-only to the agent). */
export const AGENT_DIR = '/opt/gaxx/agent';
export const AGENT_ENTRY = `${AGENT_DIR}/gaxx-agent.mjs`;
/** The controller's Node binary, uploaded when the host has no Node >= 20. */
export const UPLOADED_NODE = '/opt/gaxx/node/bin/node';
/** The agent's state: certs (it renews them itself) and task data. */
export const STATE_DIR = '/var/lib/gaxx';
export const CERTS_DIR = `${STATE_DIR}/certs`;
export const DATA_DIR = `${STATE_DIR}/data`;
/** The audit log, outside the data dir so file RPCs cannot reach it. */
export const LOG_DIR = '/var/log/gaxx';
export const AUDIT_LOG = `${LOG_DIR}/audit.log`;
/** sshd drop-in; 00- so it is read first (the first value of a keyword wins in sshd_config). */
export const SSHD_DROP_IN = '/etc/ssh/sshd_config.d/00-gaxx.conf';
export const FIREWALL_FILE = '/etc/gaxx/firewall.nft';
export const UNIT_NAME = 'gaxx-agent.service';
export const UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`;
/** Supervisor for hosts without systemd, and its pid file. */
export const SUPERVISOR = `${AGENT_DIR}/supervise.sh`;
export const SUPERVISOR_PID = '/run/gaxx-agent.pid';
export const AGENT_PORT = 8088;
export const METRICS_PORT = 9091;
/** The profiling port: never opened on fleet hosts. */
export const PROFILING_PORT = 6060;

/**
 * The agent's command line (after the node binary): Node's flags for agents, then the agent's;
 * with `fleetSince` (when its fleet was created, Unix ms), `--fleet-since`: it then refuses work
 * signed before that, as an earlier fleet's of the same name.
 */
export function agentArgs(fleetSince?: number): string[] {
  return [
    ...agentNodeFlags(AGENT_ENTRY),
    AGENT_ENTRY,
    '--listen',
    `0.0.0.0:${AGENT_PORT}`,
    '--metrics-listen',
    `0.0.0.0:${METRICS_PORT}`,
    '--certs',
    CERTS_DIR,
    '--data-dir',
    DATA_DIR,
    '--audit-log',
    AUDIT_LOG,
    ...fleetSinceArgs(fleetSince),
  ];
}
