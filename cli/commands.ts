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
  {
    name: 'certs rotate',
    summary: "issue fresh agent certificates for a fleet, push them over mTLS, verify each agent's new serial",
    load: () => import('./commands/certs-rotate.js'),
  },
  { name: 'certs revoke', summary: 'revoke a certificate by serial and re-sign the revocation list', load: () => import('./commands/certs-revoke.js') },
  { name: 'run', summary: 'run a command through the queue: on every host, or once per line of a task list', load: () => import('./commands/run.js') },
  { name: 'runs', summary: 'list recent runs with their state and counts by outcome', load: () => import('./commands/runs.js') },
  { name: 'runs show', summary: "show a run's per-task results", load: () => import('./commands/runs-show.js') },
  { name: 'runs wait', summary: "attach to a run and print its results as 'gaxx run' would", load: () => import('./commands/runs-wait.js') },
  { name: 'runs cancel', summary: 'cancel a run from any process', load: () => import('./commands/runs-cancel.js') },
  { name: 'scheduler', summary: 'run the scheduler daemon that dispatches queued tasks to agents', load: () => import('./commands/scheduler.js') },
  { name: 'spawn', summary: 'create a fleet: rent or take hosts, bootstrap them, register the fleet', load: () => import('./commands/spawn.js') },
  { name: 'ls', summary: 'list fleets and their hosts', load: () => import('./commands/ls.js') },
  { name: 'delete', summary: "destroy a fleet's tagged instances, revoke its certificates, clear its state", load: () => import('./commands/delete.js') },
  {
    name: 'ssh',
    summary: "a shell or one command on a fleet host over OpenSSH, with gaxx's pinned host keys and key",
    load: () => import('./commands/ssh.js'),
  },
  { name: 'cp', summary: 'copy a file to or from every agent of a fleet (sha256 checked)', load: () => import('./commands/cp.js') },
  {
    name: 'status',
    summary: 'per agent: reachable, version, load, capacity, certificate expiry, breaker, blocked peers',
    load: () => import('./commands/status.js'),
  },
  { name: 'completion', summary: 'print a shell completion script (bash, zsh, fish)', load: () => import('./commands/completion.js') },
  { name: 'exec', summary: 'run one command on one agent directly and stream its output', load: () => import('./commands/exec.js') },
  { name: 'ui', summary: 'the dashboard and local metrics collection of fleets, agents and runs (127.0.0.1:9090)', load: () => import('./commands/ui.js') },
];
