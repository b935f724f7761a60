/**
 * `npm run bench:startup`: start-up time of the gaxx CLI beside `node -e 0`, measured in the
 * same run (median of N runs after a warm-up; the commands take turns), printed as ratios.
 *
 *   node dist/bench/startup.js [--runs N] [--cli PATH ...] [--agent HOST[:PORT]] [--json]
 *
 * --agent also times `gaxx exec --agent HOST -- true` against a running agent that trusts the
 * GAXX_HOME of this environment (e.g. one started by `gaxx spawn --provider local`); without
 * --agent, the CLIs get throw-away homes of their own.
 * --cli picks the entry to time (default: the `gaxx` bin of package.json); given several times,
 * every entry is timed in the same run, so two builds (say a tsc build and the bundle, or
 * before and after a change) compare directly. Each entry runs as a shell runs it: the file
 * itself when it is executable with a #! line (the bin's picks Node's flags), else through Node;
 * `node -e 0` and the CLIs get the same bare environment.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { packageBin } from '../test/helpers/cli.js';
import { benchArgs } from './lib/args.js';
import { benchPath, entryArgv, entryLabel, entryLegend, formatTimings, timeCommands, type TimedCommand } from './lib/timing.js';

const USAGE = 'usage: node dist/bench/startup.js [--runs N] [--cli PATH ...] [--agent HOST[:PORT]] [--json]\n';

/** The timed commands of one CLI entry, with a GAXX_HOME made by its `gaxx init`. */
function commandsFor(cli: string, home: string, label: string, agent: string | undefined): TimedCommand[] {
  const env = { PATH: benchPath(), GAXX_HOME: agent ? process.env.GAXX_HOME : home };
  if (!agent) {
    const init = spawnSync(process.execPath, [cli, 'init', '--name', 'bench'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    if (init.status !== 0) throw new Error(`${cli} init failed: ${init.stderr.toString()}`);
  }
  // As the issue times it (hyperfine gives commands /dev/null for stdin, as this bench does).
  const exec = agent ? [['exec', '--agent', agent, '--', 'true']] : [];
  return [['--version'], ['--help'], ['exec', '--help'], ['certs', 'list'], ...exec].map((args) => ({
    name: `${label}gaxx ${args.join(' ')}`,
    argv: [...entryArgv(cli), ...args],
    env,
  }));
}

function main(): number {
  const values = benchArgs(USAGE, { runs: { type: 'string' }, agent: { type: 'string' }, cli: { type: 'string', multiple: true }, json: { type: 'boolean' } });
  const runs = Number(values.runs ?? 15);
  const clis = (values.cli ?? [packageBin('gaxx')]).map((c) => resolve(c));
  const homes = clis.map(() => mkdtempSync(join(tmpdir(), 'gaxx-bench-startup-')));
  try {
    // The same bare environment as the CLIs' (commandsFor).
    const cmds: TimedCommand[] = [{ name: 'node -e 0', argv: [process.execPath, '-e', '0'], env: { PATH: benchPath() } }];
    clis.forEach((cli, i) => cmds.push(...commandsFor(cli, homes[i] as string, entryLabel(clis, i), values.agent)));
    const timings = timeCommands(cmds, runs);
    if (values.json) process.stdout.write(`${JSON.stringify({ clis, runs, timings })}\n`);
    else {
      process.stdout.write(`gaxx start-up, median of ${runs} runs\n${entryLegend(clis)}${formatTimings(timings, 'node -e 0')}\n`);
    }
    return 0;
  } finally {
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  }
}

process.exitCode = main();
