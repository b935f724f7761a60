/**
 * The command table: one line per command. Modules are imported only when their command runs,
 * so `gaxx --help` and quick commands stay fast. To add a command, write
 * cli/commands/<name>.ts exporting `command: Command` and add its line here, e.g.
 *   { name: 'run', summary: 'run a command on a fleet through the queue', load: () => import('./commands/run.js') },
 *   { name: 'certs rotate', summary: '...', load: () => import('./commands/certs-rotate.js') },
 */
import type { Command } from './command.js';

/** One entry of the table; `name` may be several words (a command group and a subcommand). */
export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<{ command: Command }>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'init', summary: 'create the fleet CA, an SSH key pair and the operator certificate', load: () => import('./commands/init.js') },
  { name: 'certs issue', summary: 'issue a certificate for an agent, operator, scheduler or monitor', load: () => import('./commands/certs-issue.js') },
  { name: 'certs list', summary: 'list issued certificates with their status', load: () => import('./commands/certs-list.js') },
  { name: 'certs rotate', summary: "issue fresh agent certificates for a fleet, push them over mTLS, verify each agent's new serial", load: () => import('./commands/certs-rotate.js') },
  { name: 'certs revoke', summary: 'revoke a certificate by serial and re-sign the revocation list', load: () => import('./commands/certs-revoke.js') },
  { name: 'run', summary: 'run a command on agents through the queue, one task per agent', load: () => import('./commands/run.js') },
  { name: 'scheduler', summary: 'run the scheduler daemon that dispatches queued tasks to agents', load: () => import('./commands/scheduler.js') },
  { name: 'spawn', summary: 'create a fleet: rent or take hosts, bootstrap them, register the fleet', load: () => import('./commands/spawn.js') },
  { name: 'ls', summary: 'list fleets and their hosts', load: () => import('./commands/ls.js') },
  { name: 'delete', summary: "destroy a fleet's tagged instances, revoke its certificates, clear its state", load: () => import('./commands/delete.js') },
  { name: 'exec', summary: 'run one command on one agent directly and stream its output', load: () => import('./commands/exec.js') },
];
