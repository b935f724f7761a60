/**
 * `npm run quickstart`: the main job end to end on an embedded default, then a clean-up.
 *
 * Makes a throw-away GAXX_HOME (fresh CA, operator cert, SSH key via `gaxx init`), issues agent
 * certificates and starts three local gaxx-agent processes on loopback (as nobody when run as
 * root, since agents refuse root), then runs a command on all of them through the queue
 * (`gaxx run`, which starts an embedded redis-server on a private unix socket and an in-process
 * worker) and prints the results. Everything it started is stopped and the temp home removed,
 * also on failure or Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAgent, stopAllAgents, type AgentProcess } from '../test/helpers/agent.js';

const AGENTS = 3;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// The bundled CLI, as the package's `gaxx` bin; local agents run the installed agent bundle.
const cliMain = join(root, 'dist', 'bundle', 'gaxx.cjs');
const home = mkdtempSync(join(tmpdir(), 'gaxx-quickstart-'));
const env = { ...process.env, GAXX_HOME: home };

function step(title: string): void {
  process.stdout.write(`\n### ${title}\n`);
}

/** Runs the built CLI with output passed through; returns its exit code. */
function gaxx(args: string[], opts: { quiet?: boolean } = {}): number {
  process.stdout.write(`$ gaxx ${args.map((a) => (/[\s$'"]/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
  const r = spawnSync(process.execPath, [cliMain, ...args], { env, stdio: ['ignore', opts.quiet ? 'ignore' : 'inherit', 'inherit'] });
  return r.status ?? 1;
}

function must(code: number, what: string): void {
  if (code !== 0) throw new Error(`${what} failed (exit ${code})`);
}

async function main(): Promise<number> {
  step('1. a fresh installation: CA, operator certificate, SSH key');
  must(gaxx(['init', '--name', 'quickstart']), 'gaxx init');

  step(`2. ${AGENTS} local agents, each with its own certificate (mTLS on loopback)`);
  const agents: AgentProcess[] = [];
  for (let i = 1; i <= AGENTS; i++) {
    const dir = join(home, 'agents', `agent-${i}`);
    must(
      gaxx(['certs', 'issue', '--role', 'agent', '--fleet', 'local', '--name', `agent-${i}`, '--host', '127.0.0.1', '--host', 'localhost', '--out', dir], {
        quiet: true,
      }),
      'gaxx certs issue',
    );
    const agent = await startAgent({ certsDir: dir, dataDir: join(home, 'agents', `agent-${i}-data`), metrics: false });
    agents.push(agent);
    process.stdout.write(`agent-${i} listening on ${agent.address} (pid ${agent.pid})\n`);
  }
  const list = agents.map((a) => a.address).join(',');

  step('3. one command on every agent, through the queue (embedded redis-server)');
  const job = ['sh', '-c', 'echo "hello from $(id -un) on $(uname -n), in $PWD"; uptime'];
  const code = gaxx(['run', '--agent', list, '--', ...job]);

  step('4. the same run as JSON, for scripts (one object per task)');
  gaxx(['run', '--json', '--agent', list, '--', 'uname', '-sr']);

  step('5. an honest result: a failing task makes the whole run fail');
  const failing = gaxx(['run', '--agent', agents[0]?.address ?? '', '--', 'sh', '-c', 'echo about to fail >&2; exit 3']);
  process.stdout.write(`(gaxx run exited ${failing}: non-zero, as a task failed)\n`);
  return code;
}

let exitCode = 1;
const cleanup = async () => {
  await stopAllAgents();
  rmSync(home, { recursive: true, force: true });
};
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
try {
  exitCode = await main();
  step(exitCode === 0 ? 'done: every task succeeded' : `done: gaxx run exited ${exitCode}`);
} catch (e) {
  process.stderr.write(`quickstart: ${(e as Error).message}\n`);
} finally {
  step('clean-up: agents stopped, embedded redis stopped, temp home removed');
  await cleanup();
}
process.exit(exitCode);
