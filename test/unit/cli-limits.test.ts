// The bounds of every duration, number and size a user gives the CLI (flags, env, config file):
// refused up front with one USAGE (flags) or CONFIG_INVALID (env, file) line naming the setting
// and its limit, never a value that becomes a 1 ms timer, an out-of-memory spawn or a refusal
// from an agent after a run was recorded.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/commands.js';
import { loadConfig, type ReadFile } from '../../cli/config.js';
import { planRun } from '../../cli/run/plan.js';
import { fleetCounts } from '../../cli/commands/spawn.js';
import { FleetStore } from '../../cli/state.js';
import { checkDuration, formatDuration, MAX_DURATION_MS, MAX_TIMER_MS, parseSize, REQUEST_LIMITS } from '../../proto/index.js';
import { failure } from '../helpers/thrown.js';
import { cliInProcess } from '../helpers/run-cli.js';

const noFiles: ReadFile = () => undefined;
const base = { homeDir: '/home/u', userName: 'u', readFile: noFiles };

const cli = (argv: string[]): Promise<{ code: number; err: string }> => cliInProcess(argv);

describe('the one duration rule (proto/durations.ts)', () => {
  it('bounds every duration below Node’s timer limit unless a smaller or larger maximum is named', () => {
    expect(MAX_DURATION_MS).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(checkDuration('596h')).toEqual({ ms: MAX_DURATION_MS });
    expect(checkDuration('600h')).toEqual({ problem: 'must be at most 596h' });
    expect(checkDuration('1000000000h')).toEqual({ problem: 'must be at most 596h' });
    expect(checkDuration(`${'9'.repeat(400)}h`)).toEqual({ problem: 'must be at most 596h' });
    expect(checkDuration('169h', { maxMs: REQUEST_LIMITS.timeoutMs })).toEqual({ problem: 'must be at most 168h' });
    expect(checkDuration('10ms', { minMs: 1000 })).toEqual({ problem: 'must be at least 1s' });
    expect(checkDuration('30')).toEqual({ problem: 'must be a duration with a unit, like 500ms, 30s, 10m, 1h (or 0)' });
    // 0 is offered only where it is taken (--timeout, --wait-timeout take at least 1ms).
    expect(checkDuration('30', { minMs: 1 })).toEqual({ problem: 'must be a duration with a unit, like 500ms, 30s, 10m, 1h' });
    expect(formatDuration(90 * 60_000)).toBe('90m');
    expect(formatDuration(1500)).toBe('1500ms');
  });

  it('reads sizes with binary units, as the agent does', () => {
    expect(parseSize('65536')).toBe(65536);
    expect(parseSize('1k')).toBe(1024);
    expect(parseSize('64KiB')).toBe(64 * 1024);
    expect(parseSize('16M')).toBe(16 * 1024 * 1024);
    expect(parseSize('1.5')).toBeUndefined();
  });
});

describe('gaxx run and exec: what an agent would refuse is refused before anything is queued or sent', () => {
  const plan = (flags: Record<string, string | string[]>, argv = ['true']) => planRun({ agent: ['h:1'], ...flags }, argv, 8088);

  it('--timeout at most the agent’s limit (168h)', () => {
    expect(plan({ timeout: '168h' }).common.timeoutMs).toBe(REQUEST_LIMITS.timeoutMs);
    const e = failure(() => plan({ timeout: '169h' }));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain("--timeout '169h' must be at most 168h");
  });

  it('--output-cap takes sizes (1k, 16M) up to the one limit of run and exec', () => {
    expect(plan({ 'output-cap': '1k' }).common.outputCapBytes).toBe(1024);
    expect(plan({ 'output-cap': '64M' }).common.outputCapBytes).toBe(REQUEST_LIMITS.outputCapBytes);
    for (const bad of ['65M', '99999999999', '0', '1.5', 'lots']) {
      const e = failure(() => plan({ 'output-cap': bad }));
      expect(e.code, bad).toBe('USAGE');
      expect(e.message, bad).toContain(`--output-cap '${bad}'`);
    }
  });

  it('argv and env over the request limits', () => {
    expect(failure(() => plan({}, ['echo', 'x'.repeat(REQUEST_LIMITS.argBytes + 1)])).code).toBe('USAGE');
    expect(
      failure(() =>
        plan(
          {},
          Array.from({ length: REQUEST_LIMITS.argvItems + 1 }, () => 'a'),
        ),
      ).code,
    ).toBe('USAGE');
    const e = failure(() => plan({ env: [`BIG=${'v'.repeat(REQUEST_LIMITS.envValueBytes + 1)}`] }));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain('env.BIG');
    expect(failure(() => plan({ env: ['1BAD=x'] })).code).toBe('USAGE');
  });

  it('exec checks the same values as run', async () => {
    for (const [flag, value, says] of [
      ['--timeout', '169h', 'at most 168h'],
      ['--timeout', '1000000000h', 'at most 168h'],
      ['--output-cap', '99999999999', '64M'],
      ['--output-cap', '1.5', 'a size in bytes'],
    ] as const) {
      const r = await cli(['exec', '--agent', '127.0.0.1:1', '--no-stdin', flag, value, '--', 'true']);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(`${flag} '${value}'`);
      expect(r.err).toContain(says);
    }
  });

  it('run --resume takes no command and no new run’s flags (they would be ignored)', async () => {
    for (const args of [
      ['run', '--resume', 'r1', '--', 'echo'],
      ['run', '--resume', 'r1', '--fleet', 'web'],
    ]) {
      const r = await cli(args);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain('--resume');
    }
  });

  it('--results of run --resume and runs wait (the run’s folders) names a directory', async () => {
    for (const args of [
      ['run', '--resume', 'r1', '--results', ''],
      ['runs', 'wait', 'r1', '--results', ''],
    ]) {
      const r = await cli(args);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain('--results needs a directory');
    }
  });
});

/** Every command's duration flags (valueName D), the scheduler's scoped settings among them. */
const withDurations = (
  await Promise.all(
    COMMANDS.map(async (c) => {
      const { command } = await c.load();
      return Object.entries(command.flags)
        .filter(([, f]) => f.valueName === 'D')
        .map(([f]) => [c.name, f] as const);
    }),
  )
).flat();

describe('every duration flag of every command is bounded (no 1 ms timers)', () => {
  // Enough of each command line that the duration is what it refuses.
  const lines: Record<string, string[]> = {
    exec: ['--agent', '127.0.0.1:1', '--no-stdin'],
    run: ['--agent', '127.0.0.1:1'],
    spawn: ['--provider', 'local', '--count', '1', '--fleet', 'x'],
    'certs rotate': ['--fleet', 'x'],
    'runs wait': ['r1'],
    'runs cancel': ['r1', '--wait'],
  };

  it('lists the duration flags it checks', () => {
    expect(withDurations.map(([c, f]) => `${c} --${f}`)).toEqual(
      expect.arrayContaining(['status --timeout', 'ui --interval', 'run --wait-timeout', 'scheduler --reap-interval', 'scheduler --drain']),
    );
  });

  // A fleet's TTL is a point in time, not a timer: its own maximum is a year.
  const over: Record<string, string> = { ttl: '8761h' };
  it.each(withDurations)('%s --%s over its maximum (600h) is USAGE naming the flag and the maximum', async (name, flag) => {
    const rest = name === 'exec' || name === 'run' ? ['--', 'true'] : [];
    const r = await cli([...name.split(' '), ...(lines[name] ?? []), `--${flag}`, over[flag] ?? '600h', ...rest]);
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(new RegExp(`--${flag}\\b.*must be at most \\d+h`));
  });
});

describe('settings from flags, env and the config file', () => {
  it('ms settings: a whole number up to the timer limit, said without zod’s words', () => {
    for (const v of ['3000000000', '1.5', 'abc']) {
      const e = failure(() => loadConfig({ ...base, argv: ['--connect-timeout-ms', v], env: {} }));
      expect(e.code, v).toBe('USAGE');
      expect(e.message).toContain(`--connect-timeout-ms (agent.connectTimeoutMs): must be a whole number from 1 to ${MAX_DURATION_MS}`);
      expect(e.message).not.toContain('Expected number');
    }
    expect(failure(() => loadConfig({ ...base, argv: [], env: { GAXX_DEADLINE_MS: '3000000000' } })).code).toBe('CONFIG_INVALID');
    const file: ReadFile = (p) => (p === '/g/config/config.json' ? JSON.stringify({ agent: { deadlineMs: 3e9 } }) : undefined);
    expect(failure(() => loadConfig({ ...base, readFile: file, argv: [], env: { GAXX_HOME: '/g' } })).code).toBe('CONFIG_INVALID');
    expect(loadConfig({ ...base, argv: ['--deadline-ms', String(MAX_DURATION_MS)], env: {} }).agent.deadlineMs).toBe(MAX_DURATION_MS);
  });

  it('scheduler durations and ints, from the flag and the env', () => {
    const sched = { ...base, command: 'scheduler' };
    const e = failure(() => loadConfig({ ...sched, argv: ['--reap-interval', '600h'], env: {} }));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain('--reap-interval (scheduler.reapInterval): must be at most 596h');
    expect(failure(() => loadConfig({ ...sched, argv: [], env: { GAXX_SCHEDULER_DRAIN: '600h' } })).code).toBe('CONFIG_INVALID');
    const c = failure(() => loadConfig({ ...sched, argv: ['--concurrency', 'abc'], env: {} }));
    expect(c.message).toContain('--concurrency (scheduler.concurrency): must be a whole number from 1 to 10000');
  });

  it("a global flag given as '' is refused, not read as unset (--home '' would use GAXX_HOME)", () => {
    for (const argv of [['--home', ''], ['--home='], ['--state-dir', '']]) {
      const e = failure(() => loadConfig({ ...base, argv, env: { GAXX_HOME: '/g' } }));
      expect(e.code, argv.join(' ')).toBe('USAGE');
    }
    // Where '' means something (metrics off), it is still taken.
    expect(loadConfig({ ...base, command: 'scheduler', argv: ['--metrics-listen', ''], env: {} }).scheduler.metricsListen).toBe('');
  });
});

describe('gaxx spawn --count', () => {
  it('is at most 1000 hosts (a typo must not exhaust memory)', async () => {
    for (const flag of ['--count', '--min-count']) {
      const r = await cli([
        'spawn',
        '--provider',
        'local',
        '--fleet',
        'x',
        '--count',
        flag === '--count' ? '99999999' : '3',
        ...(flag === '--min-count' ? [flag, '99999999'] : []),
      ]);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(`${flag} '99999999' must be a whole number from 1 to 1000`);
    }
  });
});

describe('gaxx spawn --fill --count', () => {
  it('grows a fleet, with a min count that stays consistent with the new count, and never shrinks one', () => {
    const three = { count: 3, minCount: 3 };
    // A new fleet: --count, and all of it unless --min-count says less.
    expect(fleetCounts('web', undefined, 3, undefined)).toEqual({ count: 3, minCount: 3 });
    expect(fleetCounts('web', undefined, 3, 2)).toEqual({ count: 3, minCount: 2 });
    // --fill without --count: the fleet's own.
    expect(fleetCounts('web', { count: 3, minCount: 2 }, undefined, undefined)).toEqual({ count: 3, minCount: 2 });
    // Growing: a fleet that needed all its hosts needs all of the new count; a lower minimum is kept; --min-count sets another.
    expect(fleetCounts('web', { count: 1, minCount: 1 }, 3, undefined)).toEqual({ count: 3, minCount: 3 });
    expect(fleetCounts('web', { count: 3, minCount: 2 }, 5, undefined)).toEqual({ count: 5, minCount: 2 });
    expect(fleetCounts('web', { count: 1, minCount: 1 }, 3, 2)).toEqual({ count: 3, minCount: 2 });
    expect(fleetCounts('web', three, 3, undefined)).toEqual(three);
    // Shrinking is refused, and a min count above the count.
    expect(failure(() => fleetCounts('web', three, 1, undefined)).code).toBe('USAGE');
    expect(failure(() => fleetCounts('web', three, 2, 1)).code).toBe('USAGE');
    expect(failure(() => fleetCounts('web', three, undefined, 4)).code).toBe('USAGE');
    expect(failure(() => fleetCounts('web', undefined, undefined, 1)).code).toBe('USAGE');
  });

  it("a --count below the fleet's is USAGE (exit 2) and leaves the fleet as it was", async () => {
    const home = mkdtempSync(join(tmpdir(), 'gx-fill-'));
    try {
      const fleets = join(home, 'state', 'fleets');
      mkdirSync(fleets, { recursive: true, mode: 0o700 });
      // 3 hosts, usable with 1 (what a --fill --count 3 of a 1-host fleet used to leave).
      const store = FleetStore.create(fleets, { fleet: 'ls', provider: 'local', count: 3, minCount: 1, settings: {} });
      await store.update(() => undefined);
      const before = readFileSync(join(fleets, 'ls.json'), 'utf8');
      const r = await cliInProcess(['spawn', '--fleet', 'ls', '--fill', '--count', '1'], { env: { GAXX_HOME: home } });
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(/\[USAGE\]\n$/);
      expect(readFileSync(join(fleets, 'ls.json'), 'utf8')).toBe(before);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('every numeric flag of every command says its range in its help', () => {
  // Enough of each command line that the flag's own check is what refuses it.
  const lines: Record<string, string[]> = {
    exec: ['--agent', '127.0.0.1:1', '--no-stdin'],
    run: ['--agent', '127.0.0.1:1', '--tasks', '-'],
    spawn: ['--provider', 'local', '--fleet', 'x'],
    cp: ['./a', 'web:/tmp/a'],
    'certs rotate': ['--fleet', 'x'],
    'certs issue': ['--role', 'operator', '--name', 'x', '--out', '/nonexistent-out'],
    'runs wait': ['r1'],
    'runs cancel': ['r1', '--wait'],
  };
  // Below and above any range: whole numbers, durations, sizes.
  const probes: Record<string, string[]> = { N: ['0', '99999999999'], K: ['0', '99999999999'], D: ['1ms', '99999h'], BYTES: ['0', '99999G'] };
  // Every duration is at most this one maximum unless its help says a smaller one (README).
  const everywhere = formatDuration(MAX_DURATION_MS);

  it('the bounds a refusal names are in the help of the flag refused (run --concurrency: 1 to 100000)', async () => {
    const checked: string[] = [];
    for (const entry of COMMANDS) {
      const { command } = await entry.load();
      for (const [flag, spec] of Object.entries(command.flags)) {
        for (const probe of probes[spec.valueName ?? ''] ?? []) {
          const rest = entry.name === 'exec' || entry.name === 'run' ? ['--', 'true'] : [];
          const r = await cli([...entry.name.split(' '), ...(lines[entry.name] ?? []), `--${flag}`, probe, ...rest]);
          if (r.code !== 2 || !r.err.includes(`--${flag}`)) continue;
          const range = /must be (?:a whole number )?from (\S+) to (\S+?)(?: bytes)?(?: \(see| \[)/.exec(r.err);
          const one = /must be at (?:most|least) (\S+?)(?: \(see| \[)/.exec(r.err);
          const bounds = (range ? [range[1], range[2]] : one ? [one[1]] : []).filter((b) => b !== everywhere) as string[];
          for (const b of bounds) {
            expect(spec.help, `gaxx ${entry.name} --${flag}: ${r.err}`).toMatch(new RegExp(`(^|[^\\d.])${b.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\d])`));
            checked.push(`${entry.name} --${flag} ${b}`);
          }
        }
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining([
        'run --concurrency 100000',
        'run --retries 19',
        'runs --limit 100000',
        'ui --interval 100ms',
        'scheduler --lock 1s',
        'certs issue --days 3650',
        'cp --parallel 1000',
      ]),
    );
  });
});
