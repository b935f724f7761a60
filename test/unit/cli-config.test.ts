import { describe, expect, it } from 'vitest';
import { loadConfig, sanitizeName, type ReadFile } from '../../cli/config.js';
import { failure } from '../helpers/thrown.js';

const files =
  (map: Record<string, string>): ReadFile =>
  (p) =>
    map[p];
const noFiles: ReadFile = () => undefined;
const base = { homeDir: '/home/u', userName: 'u' };

describe('loadConfig paths', () => {
  it('uses XDG defaults under the home directory', () => {
    const c = loadConfig({ ...base, argv: [], env: {}, readFile: noFiles });
    expect(c.paths.configDir).toBe('/home/u/.config/gaxx');
    expect(c.paths.stateDir).toBe('/home/u/.local/state/gaxx');
    expect(c.paths.caDir).toBe('/home/u/.config/gaxx/ca');
    expect(c.paths.operatorCertDir).toBe('/home/u/.config/gaxx/operator');
    expect(c.paths.sshPrivateKey).toBe('/home/u/.config/gaxx/ssh/id_ed25519');
    expect(c.paths.sshPublicKey).toBe('/home/u/.config/gaxx/ssh/id_ed25519.pub');
    expect(c.paths.home).toBeUndefined();
  });

  it('follows XDG_CONFIG_HOME and XDG_STATE_HOME (absolute only)', () => {
    const c = loadConfig({ ...base, argv: [], env: { XDG_CONFIG_HOME: '/x/conf', XDG_STATE_HOME: '/x/state' }, readFile: noFiles });
    expect(c.paths.configDir).toBe('/x/conf/gaxx');
    expect(c.paths.runsDir).toBe('/x/state/gaxx/runs');
    const rel = loadConfig({ ...base, argv: [], env: { XDG_CONFIG_HOME: 'relative' }, readFile: noFiles });
    expect(rel.paths.configDir).toBe('/home/u/.config/gaxx');
  });

  it('GAXX_HOME relocates everything, over XDG; --home wins over GAXX_HOME', () => {
    const env = { GAXX_HOME: '/g', XDG_CONFIG_HOME: '/x/conf', XDG_STATE_HOME: '/x/state' };
    const c = loadConfig({ ...base, argv: [], env, readFile: noFiles });
    expect(c.paths.configDir).toBe('/g/config');
    expect(c.paths.stateDir).toBe('/g/state');
    expect(c.paths.configFile).toBe('/g/config/config.json');
    expect(c.paths.caDir).toBe('/g/config/ca');
    const f = loadConfig({ ...base, argv: ['--home', '/h2'], env, readFile: noFiles });
    expect(f.paths.stateDir).toBe('/h2/state');
    const rel = loadConfig({ ...base, argv: [], env: { GAXX_HOME: 'lab' }, readFile: noFiles, cwd: '/work' });
    expect(rel.paths.configDir).toBe('/work/lab/config');
  });
});

describe('loadConfig precedence', () => {
  const file = files({ '/g/config/config.json': JSON.stringify({ logLevel: 'debug', agent: { port: 9000, deadlineMs: 2000 } }) });

  it('defaults apply when nothing is set', () => {
    const c = loadConfig({ ...base, argv: [], env: {}, readFile: noFiles });
    expect(c.agent).toEqual({ port: 8088, deadlineMs: 10_000, connectTimeoutMs: 5_000 });
    expect(c.logLevel).toBe('info');
    expect(c.operatorName).toBe('u');
  });

  it('file < env < flags, key by key', () => {
    const fromFile = loadConfig({ ...base, argv: [], env: { GAXX_HOME: '/g' }, readFile: file });
    expect(fromFile.agent).toEqual({ port: 9000, deadlineMs: 2000, connectTimeoutMs: 5_000 });
    expect(fromFile.logLevel).toBe('debug');
    const fromEnv = loadConfig({ ...base, argv: [], env: { GAXX_HOME: '/g', GAXX_DEADLINE_MS: '3000', GAXX_LOG_LEVEL: 'warn' }, readFile: file });
    expect(fromEnv.agent).toEqual({ port: 9000, deadlineMs: 3000, connectTimeoutMs: 5_000 });
    expect(fromEnv.logLevel).toBe('warn');
    const fromFlags = loadConfig({
      ...base,
      argv: ['exec-like', '--deadline-ms', '4000', '--other', 'x', '--', '--deadline-ms', '1'],
      env: { GAXX_HOME: '/g', GAXX_DEADLINE_MS: '3000', GAXX_LOG_LEVEL: 'warn' },
      readFile: file,
    });
    expect(fromFlags.agent.deadlineMs).toBe(4000);
    expect(fromFlags.logLevel).toBe('warn');
    expect(fromFlags.agent.port).toBe(9000);
  });

  it('operator name: file, then env, defaulting to the sanitized user name', () => {
    expect(loadConfig({ argv: [], env: {}, readFile: noFiles, homeDir: '/h', userName: 'Jane Doe!' }).operatorName).toBe('Jane-Doe-');
    expect(loadConfig({ ...base, argv: [], env: { GAXX_OPERATOR_NAME: 'ops' }, readFile: noFiles }).operatorName).toBe('ops');
    expect(sanitizeName('..')).toBe('operator');
  });
});

describe('loadConfig errors', () => {
  const at = (text: string) => files({ '/g/config/config.json': text });
  const env = { GAXX_HOME: '/g' };

  it('a bad value in the file is CONFIG_INVALID with its dot-path', () => {
    const e = failure(() => loadConfig({ ...base, argv: [], env, readFile: at('{"agent":{"port":"80"}}') }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.details?.issues).toEqual([expect.objectContaining({ path: 'agent.port' })]);
  });

  it('an unknown key is CONFIG_INVALID naming it', () => {
    const e = failure(() => loadConfig({ ...base, argv: [], env, readFile: at('{"agent":{"prot":80}}') }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.details?.issues).toEqual([expect.objectContaining({ path: 'agent.prot' })]);
  });

  it("a value of the wrong JSON type says what the setting takes, not the validator's words", () => {
    const e = failure(() => loadConfig({ ...base, argv: [], env, readFile: at('{"scheduler":{"drain":10},"providers":{"linode":{"url":5}}}') }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('scheduler.drain: must be a JSON string, e.g. "10s", not a number');
    expect(e.message).toContain('providers.linode.url: must be a JSON string, not a number');
    expect(e.message).not.toContain('Expected');
    // A setting's own message stays (an int's range).
    expect(failure(() => loadConfig({ ...base, argv: [], env, readFile: at('{"agent":{"port":"80"}}') })).message).toContain(
      'must be a whole number from 1 to 65535',
    );
  });

  it('an empty flag value points at the help of the command it was given to', () => {
    const e = failure(() => loadConfig({ ...base, argv: ['--fleet='], env: {}, readFile: noFiles, command: 'run' }));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain("(see 'gaxx run --help')");
  });

  it('malformed JSON is CONFIG_INVALID', () => {
    expect(failure(() => loadConfig({ ...base, argv: [], env, readFile: at('{nope') })).code).toBe('CONFIG_INVALID');
  });

  it('a bad env value is CONFIG_INVALID; a bad flag value is USAGE', () => {
    const e = failure(() => loadConfig({ ...base, argv: [], env: { GAXX_AGENT_PORT: 'eighty' }, readFile: noFiles }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.details?.issues).toEqual([expect.objectContaining({ path: 'agent.port' })]);
    expect(failure(() => loadConfig({ ...base, argv: ['--log-level', 'loud'], env: {}, readFile: noFiles })).code).toBe('USAGE');
    expect(failure(() => loadConfig({ ...base, argv: ['--deadline-ms', '0'], env: {}, readFile: noFiles })).code).toBe('USAGE');
  });
});

describe('the scheduler daemon settings (one table with the CLI)', () => {
  it('has one set of defaults, and the agent deadlines of gaxx run', () => {
    const c = loadConfig({ ...base, argv: [], env: {}, readFile: noFiles, command: 'scheduler' });
    expect(c.scheduler).toEqual({
      concurrency: 64,
      maxRuns: 100,
      metricsListen: '127.0.0.1:9092',
      uiListen: '127.0.0.1:9090',
      drainMs: 10_000,
      lockMs: 30_000,
      renewIntervalMs: 600_000,
      reapIntervalMs: 15_000,
    });
    expect(c.agent.deadlineMs).toBe(10_000);
  });

  it('follows XDG_STATE_HOME like every command, and GAXX_STATE_DIR over it', () => {
    const env = { XDG_STATE_HOME: '/x/state' };
    expect(loadConfig({ ...base, argv: [], env, readFile: noFiles, command: 'scheduler' }).paths.stateDir).toBe('/x/state/gaxx');
    const moved = loadConfig({ ...base, argv: [], env: { ...env, GAXX_STATE_DIR: '/s' }, readFile: noFiles, command: 'scheduler' });
    expect(moved.paths.stateDir).toBe('/s');
    expect(moved.paths.fleetsDir).toBe('/s/fleets');
    expect(failure(() => loadConfig({ ...base, argv: [], env: { GAXX_STATE_DIR: 'rel' }, readFile: noFiles })).code).toBe('CONFIG_INVALID');
  });

  it('takes file < GAXX_SCHEDULER_* < flags, durations with units', () => {
    const file = files({ '/g/config/config.json': JSON.stringify({ scheduler: { concurrency: 8, drain: '2s' }, agent: { deadlineMs: 2500 } }) });
    const env = { GAXX_HOME: '/g', GAXX_SCHEDULER_RENEW_INTERVAL: '1h', GAXX_SCHEDULER_DRAIN: '3s' };
    const c = loadConfig({ ...base, argv: ['--concurrency', '16', '--renew-interval', '0'], env, readFile: file, command: 'scheduler' });
    expect(c.scheduler.concurrency).toBe(16);
    expect(c.scheduler.drainMs).toBe(3000);
    expect(c.scheduler.renewIntervalMs).toBe(0);
    expect(
      loadConfig({ ...base, argv: ['--ui-listen', ''], env: { GAXX_SCHEDULER_UI_LISTEN: '127.0.0.1:9300' }, readFile: noFiles, command: 'scheduler' }).scheduler
        .uiListen,
    ).toBe('');
    expect(
      loadConfig({ ...base, argv: [], env: { GAXX_SCHEDULER_UI_LISTEN: '127.0.0.1:9300' }, readFile: noFiles, command: 'scheduler' }).scheduler.uiListen,
    ).toBe('127.0.0.1:9300');
    // The config file's agent deadline reaches the daemon.
    expect(c.agent.deadlineMs).toBe(2500);
    // The env alone (no flag) is honoured.
    expect(loadConfig({ ...base, argv: [], env, readFile: file, command: 'scheduler' }).scheduler.renewIntervalMs).toBe(3_600_000);
  });

  it('reads scheduler flags only for the scheduler command', () => {
    const c = loadConfig({ ...base, argv: ['--concurrency', '5'], env: {}, readFile: noFiles, command: 'run' });
    expect(c.scheduler.concurrency).toBe(64);
  });

  it('refuses bad values: USAGE for flags, CONFIG_INVALID for env and file', () => {
    const sched = { ...base, readFile: noFiles, command: 'scheduler' };
    expect(failure(() => loadConfig({ ...sched, argv: ['--renew-interval', 'soon'], env: {} })).code).toBe('USAGE');
    expect(failure(() => loadConfig({ ...sched, argv: ['--drain', '30'], env: {} })).code).toBe('USAGE');
    // A negative duration has its unit: its sign is what is said.
    expect(failure(() => loadConfig({ ...sched, argv: ['--drain=-1s'], env: {} })).message).toContain('must not be negative');
    expect(failure(() => loadConfig({ ...sched, argv: ['--metrics-listen', 'nonsense'], env: {} })).code).toBe('USAGE');
    expect(failure(() => loadConfig({ ...sched, argv: ['--concurrency', '0'], env: {} })).code).toBe('USAGE');
    expect(failure(() => loadConfig({ ...sched, argv: [], env: { GAXX_SCHEDULER_RENEW_INTERVAL: 'soon' } })).code).toBe('CONFIG_INVALID');
    expect(failure(() => loadConfig({ ...sched, argv: [], env: { GAXX_SCHEDULER_LOCK: '10ms' } })).code).toBe('CONFIG_INVALID');
    const file = files({ '/home/u/.config/gaxx/config.json': JSON.stringify({ scheduler: { metricsListen: 'x:99999' } }) });
    expect(failure(() => loadConfig({ ...sched, argv: [], env: {}, readFile: file })).code).toBe('CONFIG_INVALID');
    // An empty metrics address turns metrics off.
    expect(loadConfig({ ...sched, argv: ['--metrics-listen', ''], env: {} }).scheduler.metricsListen).toBe('');
  });
});

describe('redis.insecure (--redis-insecure, GAXX_REDIS_INSECURE)', () => {
  it('is off by default, on from the env, the file or the flag; a flag without a value does not eat the next argument', () => {
    expect(loadConfig({ ...base, argv: [], env: {}, readFile: noFiles }).redis.insecure).toBe(false);
    expect(loadConfig({ ...base, argv: [], env: { GAXX_REDIS_INSECURE: '1' }, readFile: noFiles }).redis.insecure).toBe(true);
    expect(loadConfig({ ...base, argv: [], env: { GAXX_REDIS_INSECURE: 'false' }, readFile: noFiles }).redis.insecure).toBe(false);
    const file = files({ '/home/u/.config/gaxx/config.json': JSON.stringify({ redis: { insecure: true } }) });
    expect(loadConfig({ ...base, argv: [], env: {}, readFile: file }).redis.insecure).toBe(true);
    const c = loadConfig({ ...base, argv: ['run', '--redis-insecure', '--redis-url', 'redis://10.0.0.5'], env: {}, readFile: noFiles });
    expect(c.redis).toEqual({ url: 'redis://10.0.0.5', insecure: true, timeoutMs: 10_000, goneMs: 60_000 });
  });

  it('refuses a value that is not a boolean, naming the variable', () => {
    const e = failure(() => loadConfig({ ...base, argv: [], env: { GAXX_REDIS_INSECURE: 'maybe' }, readFile: noFiles }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(JSON.stringify(e.details)).toContain('redis.insecure');
  });
});

describe('redis.timeoutMs and redis.goneMs (--redis-timeout-ms, --redis-gone-ms)', () => {
  it('default to 10 s and 60 s; set from the env, the file or the flag, the flag winning', () => {
    expect(loadConfig({ ...base, argv: [], env: {}, readFile: noFiles }).redis).toMatchObject({ timeoutMs: 10_000, goneMs: 60_000 });
    expect(loadConfig({ ...base, argv: [], env: { GAXX_REDIS_TIMEOUT_MS: '1500', GAXX_REDIS_GONE_MS: '5000' }, readFile: noFiles }).redis).toMatchObject({
      timeoutMs: 1500,
      goneMs: 5000,
    });
    const file = files({ '/home/u/.config/gaxx/config.json': JSON.stringify({ redis: { timeoutMs: 2000, goneMs: 3000 } }) });
    expect(loadConfig({ ...base, argv: [], env: {}, readFile: file }).redis).toMatchObject({ timeoutMs: 2000, goneMs: 3000 });
    const c = loadConfig({
      ...base,
      argv: ['runs', '--redis-timeout-ms', '250', '--redis-gone-ms=750'],
      env: { GAXX_REDIS_TIMEOUT_MS: '1500' },
      readFile: file,
    });
    expect(c.redis).toMatchObject({ timeoutMs: 250, goneMs: 750 });
  });

  it.each([
    ['GAXX_REDIS_TIMEOUT_MS', '0', 'redis.timeoutMs'],
    ['GAXX_REDIS_TIMEOUT_MS', 'soon', 'redis.timeoutMs'],
    ['GAXX_REDIS_GONE_MS', '-1', 'redis.goneMs'],
  ])('refuses %s=%s, naming the setting', (name, value, path) => {
    const e = failure(() => loadConfig({ ...base, argv: [], env: { [name]: value }, readFile: noFiles }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(JSON.stringify(e.details)).toContain(path);
  });
});
