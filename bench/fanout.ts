/**
 * `npm run bench:fanout`: a command on 10 and 50 hosts, gaxx against parallel-ssh, in one run.
 *
 * Starts 50 local gaxx-agents (the local provider: as nobody, 127.0.0.2-51:8088, fresh
 * certificates) and 50 OpenSSH hosts (one sshd each, 127.0.1.1-50:2200, key auth, strict host
 * keys, a bench user with a plain shell), then times, round robin, median of N runs:
 * `node -e 0`, `gaxx --version`, `gaxx exec -- true` to one agent, `gaxx run -- true` over 10
 * and 50 agents without and then with a `gaxx scheduler` daemon, and `parallel-ssh -p N true`
 * (or `xargs -P N ssh` when pssh is missing) over 10 and 50 sshd hosts. Prints the table and
 * the ratios, then where each `gaxx run`'s time and CPU go, from as many more runs of each with
 * --json --timings (lib/run-breakdown.ts): the run's moments, and the CPU of the CLI, the agents,
 * their launchers, the daemon, redis-server and the whole machine. Everything it started is
 * stopped, also on Ctrl-C or SIGTERM (a `timeout`).
 *
 *   node dist/bench/fanout.js [--runs N] [--sizes 10,50] [--port 8088] [--gap MS] [--cli PATH ...] [--json]
 *
 * --cli picks the gaxx entry whose commands are timed (default: the checkout's bin); given several
 * times, each entry's commands are timed in the same run against the same agents, hosts and
 * daemon (the first entry's), so two builds compare directly (before and after a change). The
 * entries take turns, and a fan-out that follows another on the same agents finds their warm
 * sandboxes used up (measured: 250-400 ms slower at 50 agents): compare with a --gap of a few
 * seconds, and in both orders.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLocalProvider } from '../cli/providers/local.js';
import type { Provider } from '../cli/providers/types.js';
import { acquireEmbeddedRedis } from '../scheduler/index.js';
import { CLI_MAIN } from '../test/helpers/cli.js';
import { refuseCrowdedAgentUser } from './lib/agent-room.js';
import { benchArgs } from './lib/args.js';
import { cleanUpOnSignal } from './lib/on-signal.js';
import type { Classify } from './lib/process-cpu.js';
import { breakDownRuns, formatBreakdowns, type RunBreakdown } from './lib/run-breakdown.js';
import { startSshdHosts, type SshdHosts } from './lib/sshd-hosts.js';
import { benchPath, entryArgv, entryLabel, entryLegend, formatTimings, timeCommands, type TimedCommand, type Timing } from './lib/timing.js';

const USAGE =
  'usage: node dist/bench/fanout.js [--runs N] [--sizes 10,50] [--port 8088] [--gap MS] [--cli PATH ...] [--json]\n' +
  "  --cli PATH  a gaxx entry to time (default: the checkout's bin); several: each is timed, in one run\n" +
  '  --gap MS  leave MS between turns, untimed (default 0: back to back), so that agents are done\n' +
  '            refilling their warm sandboxes (after 1 s without a task) before the next turn\n' +
  "  --port N  the agents' gRPC port (default 8088), each on its own loopback address\n" +
  "  --json    one JSON document: the timings and the runs' breakdowns\n";
const FLEET = 'bench';
const node = process.execPath;

interface World {
  home: string;
  runDir: string;
  sshDir: string;
  provider?: Provider;
  sshd?: SshdHosts;
  daemon?: ChildProcess;
}

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** Starts `count` local agents, 4 at a time (each start issues a certificate); their `host:port`s. */
async function startAgents(provider: Provider, count: number, port: number): Promise<string[]> {
  const addrs: string[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = next++; i < count; i = next++) {
        const inst = await provider.create({ fleet: FLEET, label: `a${i + 1}`, index: i });
        addrs[i] = `${inst.ipv4 as string}:${port}`;
      }
    }),
  );
  return addrs;
}

/** The fan-out command over `n` sshd hosts: parallel-ssh, or xargs -P over ssh. */
function sshFanout(s: SshdHosts, n: number, dir: string): TimedCommand {
  const hostsFile = join(dir, `hosts-${n}`);
  const pssh = hasCommand('parallel-ssh');
  // parallel-ssh reads host:port lines; ssh takes the port with -p and refuses a host:port name.
  writeFileSync(
    hostsFile,
    s.hosts
      .slice(0, n)
      .map((h) => (pssh ? `${h}:${s.port}` : h))
      .join('\n') + '\n',
  );
  if (pssh) {
    const opts = s.sshOptions.flatMap((o, i, all) => (all[i - 1] === '-o' ? ['-O', o] : []));
    return {
      name: `parallel-ssh -p ${n} (${n} sshd)`,
      argv: ['parallel-ssh', '-p', String(n), '-t', '60', '-h', hostsFile, '-l', s.user, '-x', '-F /dev/null', ...opts, 'true'],
      env: { PATH: process.env.PATH },
    };
  }
  const ssh = ['ssh', ...s.sshOptions, '-p', String(s.port), '-l', s.user].map((a) => `'${a}'`).join(' ');
  return { name: `xargs -P ${n} ssh (${n} sshd)`, argv: ['sh', '-c', `xargs -P ${n} -I{} ${ssh} {} true < '${hostsFile}'`], env: { PATH: process.env.PATH } };
}

/** The bench's agents and launchers (their files are in `runDir`), its daemon and redis-server. */
function fleetClassifier(w: World): Classify {
  const redisPid = join(w.home, 'state', 'redis', 'redis.pid');
  return (cmdline, pid) => {
    if (pid === w.daemon?.pid) return 'daemon';
    if (cmdline.includes(`${w.runDir}/`)) return cmdline.includes('gaxx-launcher') ? 'launchers' : cmdline.includes('gaxx-agent') ? 'agents' : undefined;
    if (cmdline.includes('redis-server') && existsSync(redisPid) && readFileSync(redisPid, 'utf8').trim() === String(pid)) return 'redis';
    return undefined;
  };
}

async function startDaemon(cli: string, env: Record<string, string | undefined>): Promise<ChildProcess> {
  const [file, ...argv] = entryArgv(cli);
  const daemon = spawn(file as string, [...argv, 'scheduler', '--metrics-listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`gaxx scheduler did not start: ${err}`)), 30_000);
    daemon.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
      if (err.includes('"scheduler started"')) {
        clearTimeout(t);
        resolve();
      }
    });
    daemon.once('exit', (code) => reject(new Error(`gaxx scheduler exited (${code}): ${err}`)));
  });
  return daemon;
}

async function cleanup(w: World): Promise<void> {
  if (w.daemon && w.daemon.exitCode === null) {
    const exited = new Promise((r) => w.daemon?.once('exit', r));
    w.daemon.kill('SIGTERM');
    await exited;
  }
  if (w.provider) for (const i of await w.provider.list(FLEET)) await w.provider.destroy(FLEET, i.id);
  await w.sshd?.stop();
  if (existsSync(join(w.home, 'state', 'redis'))) await (await acquireEmbeddedRedis(join(w.home, 'state'))).release();
  for (const d of [w.home, w.runDir, w.sshDir]) rmSync(d, { recursive: true, force: true });
}

function ratioLines(t: Timing[]): string[] {
  const m = new Map(t.map((x) => [x.name, x.medianMs]));
  const out: string[] = [];
  for (const [name, ms] of m) {
    const n = /^(?:\[\d+\] )?gaxx run -- true \((\d+) agents/.exec(name)?.[1];
    const ssh = n && [...m.keys()].find((k) => k.includes(`(${n} sshd)`));
    if (ssh) out.push(`${ssh} / ${name}: ${((m.get(ssh) as number) / ms).toFixed(1)}x`);
  }
  return out;
}

async function main(): Promise<number> {
  const values = benchArgs(USAGE, {
    runs: { type: 'string' },
    sizes: { type: 'string' },
    port: { type: 'string' },
    gap: { type: 'string' },
    cli: { type: 'string', multiple: true },
    json: { type: 'boolean' },
  });
  await refuseCrowdedAgentUser();
  const clis = (values.cli ?? [CLI_MAIN]).map((c) => resolve(c));
  const runs = Number(values.runs ?? 5);
  const gapMs = Number(values.gap ?? 0);
  if (!Number.isInteger(gapMs) || gapMs < 0) {
    process.stderr.write(`bench:fanout: --gap takes a whole number of ms\n${USAGE}`);
    return 2;
  }
  const sizes = (values.sizes ?? '10,50').split(',').map(Number);
  if (!Number.isInteger(runs) || runs < 1 || sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 200)) {
    process.stderr.write(`bench:fanout: --runs takes a whole number >= 1, --sizes whole numbers from 1 to 200\n${USAGE}`);
    return 2;
  }
  const port = Number(values.port ?? 8088);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write(`bench:fanout: --port takes a port number (1-65535)\n${USAGE}`);
    return 2;
  }
  const max = Math.max(...sizes);
  const w: World = {
    home: mkdtempSync(join(tmpdir(), 'gaxx-bench-fanout-')),
    runDir: join(tmpdir(), `gaxx-bench-fanout-agents-${process.pid}`),
    sshDir: mkdtempSync(join(tmpdir(), 'gaxx-bench-fanout-ssh-')),
  };
  chmodSync(w.sshDir, 0o711);
  cleanUpOnSignal(() => cleanup(w));
  const env = { PATH: benchPath(), GAXX_HOME: w.home };
  try {
    if (spawnSync(node, [clis[0] as string, 'init', '--name', 'bench'], { env }).status !== 0) throw new Error('gaxx init failed');
    w.provider = createLocalProvider({
      options: {
        caDir: join(w.home, 'config', 'ca'),
        stateDir: join(w.home, 'state', 'local'),
        runDir: w.runDir,
        port,
        agentArgs: ['--capacity', '64'],
      },
    });
    process.stderr.write(`starting ${max} local agents and ${max} sshd hosts...\n`);
    // Both sides start at once; whatever started is stopped by cleanup even when the other side failed.
    const [a, s] = await Promise.allSettled([startAgents(w.provider, max, port), startSshdHosts(max, w.sshDir)]);
    if (s.status === 'fulfilled') w.sshd = s.value;
    if (a.status === 'rejected') throw a.reason;
    if (s.status === 'rejected') throw s.reason;
    const [agents, sshd] = [a.value, s.value];
    // Each entry's commands, named `[i] gaxx ...` when there are several.
    const gaxx = (name: string, args: string[]): TimedCommand[] =>
      clis.map((cli, i) => ({ name: `${entryLabel(clis, i)}${name}`, argv: [...entryArgv(cli), ...args], env }));
    const run = (n: number, label: string, flags: string[] = []) =>
      gaxx(`gaxx run -- true (${n} agents, ${label})`, ['run', '--agent', agents.slice(0, n).join(','), ...flags, '--', 'true']);
    const classify = fleetClassifier(w);
    const breakdowns: RunBreakdown[] = [];
    const breakDown = (label: string) =>
      breakdowns.push(
        ...breakDownRuns(
          sizes.flatMap((n) => run(n, label, ['--json', '--timings'])),
          runs,
          gapMs,
          classify,
        ),
      );
    const plain = timeCommands(
      [
        { name: 'node -e 0', argv: [node, '-e', '0'], env },
        ...gaxx('gaxx --version', ['--version']),
        ...gaxx('gaxx exec -- true (1 agent)', ['exec', '--agent', agents[0] as string, '--', 'true']),
        ...sizes.flatMap((n) => run(n, 'no daemon')),
        ...sizes.map((n) => sshFanout(sshd, n, w.sshDir)),
      ],
      runs,
      gapMs,
    );
    breakDown('no daemon');
    w.daemon = await startDaemon(clis[0] as string, env);
    const withDaemon = timeCommands(
      sizes.flatMap((n) => run(n, 'daemon')),
      runs,
      gapMs,
    );
    breakDown('daemon');
    const all = [...plain, ...withDaemon];
    if (values.json) process.stdout.write(`${JSON.stringify({ runs, gapMs, timings: all, breakdowns })}\n`);
    else
      process.stdout.write(
        `fan-out, median of ${runs} runs${gapMs ? `, turns ${gapMs} ms apart` : ''}\n${entryLegend(clis)}${formatTimings(all, 'node -e 0')}\n\n${ratioLines(all).join('\n')}\n\n` +
          `${formatBreakdowns(breakdowns)}\n`,
      );
    return 0;
  } finally {
    await cleanup(w);
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench:fanout: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
