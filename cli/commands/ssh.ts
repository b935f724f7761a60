/**
 * `gaxx ssh F[/N] [-- CMD ARGS...]`: an interactive shell (or one command) on a fleet host, as
 * the agent user `gx`, through OpenSSH with gaxx's own key and gaxx's known_hosts only: the host
 * key must be the one pinned or verified at bootstrap (StrictHostKeyChecking=yes), never
 * trusted on first use here.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GaxxError } from '../../proto/index.js';
import { stringFlag, usageError, type Command } from '../command.js';
import { assertFleetName, readFleet, type HostRecord } from '../state.js';

/** `F` or `F/N` (N: the host's index in the fleet). */
function parseTarget(raw: string): { fleet: string; index: number | undefined } {
  const m = /^([^/]+)(?:\/(\d+))?$/.exec(raw);
  if (!m) throw usageError('ssh', `'${raw}' must be FLEET or FLEET/N`);
  assertFleetName(m[1] as string);
  return { fleet: m[1] as string, index: m[2] === undefined ? undefined : Number(m[2]) };
}

/** The OpenSSH argv for `host`: gaxx's key and known_hosts, strict host key checking. */
export function sshArgv(host: HostRecord & { ipv4: string }, o: { key: string; knownHosts: string; user: string; command: string[] }): string[] {
  const port = host.ssh?.port ?? 22;
  return [
    '-i',
    host.ssh?.keyPath ?? o.key,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${o.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'PasswordAuthentication=no',
    '-o',
    'KbdInteractiveAuthentication=no',
    '-p',
    String(port),
    '-l',
    o.user,
    ...(o.command.length > 0 ? [] : ['-t']),
    host.ipv4,
    ...(o.command.length > 0 ? ['--', ...o.command] : []),
  ];
}

export const command: Command = {
  usage: 'gaxx ssh F[/N] [--user U] [-- CMD ARGS...]',
  description: [
    'Opens a shell on host N of fleet F (default: its first ready host), or runs CMD there, over',
    "OpenSSH as the agent user gx with gaxx's SSH key. The host key is checked against gaxx's own",
    'known_hosts (<config>/ssh/known_hosts), where bootstrap recorded the key it pinned or',
    'verified: a different key is refused, and nothing is trusted on first use. Local fleets have',
    "no SSH: use gaxx exec. Exits with the remote command's code.",
  ].join('\n'),
  flags: {
    user: { type: 'string', valueName: 'U', help: 'log in as U instead of gx (root login is off on bootstrapped hosts)' },
  },
  positionals: { names: ['F[/N]'], min: 1, complete: 'fleet' },
  takesRest: true,
  examples: ['gaxx ssh web', 'gaxx ssh web/2', 'gaxx ssh web/0 -- uptime'],
  async run({ positionals, rest, flags, config, out }) {
    const { fleet, index } = parseTarget(positionals[0] as string);
    const state = readFleet(config.paths.fleetsDir, fleet);
    if (!state) throw new GaxxError('NOT_FOUND', `no fleet ${fleet} (see 'gaxx ls')`);
    if (state.provider === 'local') throw new GaxxError('FAILED_PRECONDITION', `fleet ${fleet} runs on this machine without SSH; use 'gaxx exec --agent ADDR'`);
    const ready = state.hosts.filter((h): h is HostRecord & { ipv4: string } => h.status === 'ready' && h.ipv4 !== undefined);
    const host = index === undefined ? ready[0] : ready.find((h) => h.index === index);
    if (!host)
      throw new GaxxError(
        'NOT_FOUND',
        index === undefined ? `fleet ${fleet} has no ready host` : `fleet ${fleet} has no ready host ${index} (see 'gaxx ls ${fleet}')`,
      );
    const knownHosts = join(config.paths.sshDir, 'known_hosts');
    if (!existsSync(knownHosts)) throw new GaxxError('NOT_FOUND', `no ${knownHosts}: this fleet's host keys were never recorded`);
    const argv = sshArgv(host, { key: config.paths.sshPrivateKey, knownHosts, user: stringFlag(flags, 'user') ?? 'gx', command: rest });
    out.note(`gaxx: ${host.name} (${host.ipv4})`);
    return new Promise<number>((resolve, reject) => {
      const child = spawn('ssh', argv, { stdio: 'inherit' });
      child.once('error', (e: NodeJS.ErrnoException) =>
        reject(e.code === 'ENOENT' ? new GaxxError('FAILED_PRECONDITION', "no 'ssh' command: install the OpenSSH client (apt-get install openssh-client)") : e),
      );
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
    });
  },
};
