/**
 * `npm run bench:startup`: start-up time of the gaxx CLI beside `node -e 0`, measured in the
 * same run (median of N runs after a warm-up; the commands take turns), printed as ratios.
 *
 *   node dist/bench/startup.js [--runs N] [--cli PATH] [--json]
 *
 * --cli picks the entry to time (default: the `gaxx` bin of package.json), so a tsc build
 * (dist/cli/main.js) and the bundle can be compared.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { packageBin } from '../test/helpers/cli.js';
import { formatTimings, timeCommands } from './lib/timing.js';

const USAGE = 'usage: node dist/bench/startup.js [--runs N] [--cli PATH] [--json]\n';

function main(): number {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, cli: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const runs = Number(values.runs ?? 15);
  const cli = resolve(values.cli ?? packageBin('gaxx'));
  const home = mkdtempSync(join(tmpdir(), 'gaxx-bench-startup-'));
  const env = { PATH: process.env.PATH, GAXX_HOME: home };
  try {
    const init = spawnSync(process.execPath, [cli, 'init', '--name', 'bench'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    if (init.status !== 0) throw new Error(`gaxx init failed: ${init.stderr.toString()}`);
    const node = process.execPath;
    const cmds = [
      { name: 'node -e 0', argv: [node, '-e', '0'] },
      { name: 'gaxx --version', argv: [node, cli, '--version'] },
      { name: 'gaxx --help', argv: [node, cli, '--help'] },
      { name: 'gaxx exec --help', argv: [node, cli, 'exec', '--help'] },
      { name: 'gaxx certs list', argv: [node, cli, 'certs', 'list'] },
    ];
    const timings = timeCommands(cmds.map((c) => ({ ...c, env })), runs);
    if (values.json) process.stdout.write(`${JSON.stringify({ cli, runs, timings })}\n`);
    else process.stdout.write(`gaxx start-up (${cli}), median of ${runs} runs\n${formatTimings(timings, 'node -e 0')}\n`);
    return 0;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

process.exitCode = main();
