// loadAgentConfig: defaults, precedence (flags over GAXX_AGENT_* env), and refusals with codes.
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/index.js';
import { isGaxxError } from '../../proto/index.js';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'none';
  } catch (e) {
    return isGaxxError(e) ? e.code : 'not a GaxxError';
  }
};

describe('loadAgentConfig', () => {
  it('applies defaults: :8088, metrics and profiling off, production', () => {
    const c = loadAgentConfig({ argv: ['--certs', '/c'], env: { HOME: '/home/gx' } });
    expect(c).toMatchObject({
      listen: { host: '0.0.0.0', port: 8088 },
      certsDir: '/c',
      dataDir: '/home/gx/.local/state/gaxx-agent',
      metricsListen: undefined,
      profilingListen: undefined,
      capacity: 16,
      defaultTimeoutMs: 3_600_000,
      defaultOutputCapBytes: 16 * 1024 * 1024,
      maxMessageBytes: 4 * 1024 * 1024,
      environment: 'production',
    });
  });

  it('reads GAXX_AGENT_* env and lets flags win', () => {
    const env = { GAXX_AGENT_CERTS: '/env-certs', GAXX_AGENT_CAPACITY: '3', GAXX_AGENT_METRICS_LISTEN: '127.0.0.1:9091', GAXX_ENV: 'development' };
    const c = loadAgentConfig({ argv: ['--capacity', '5', '--default-timeout', '30s', '--max-message-bytes', '1MiB', '--listen', '[::1]:0'], env });
    expect(c).toMatchObject({
      certsDir: '/env-certs',
      capacity: 5,
      metricsListen: { host: '127.0.0.1', port: 9091 },
      defaultTimeoutMs: 30_000,
      maxMessageBytes: 1024 * 1024,
      listen: { host: '::1', port: 0 },
      environment: 'development',
    });
  });

  it('refuses unknown flags (USAGE) and bad values (CONFIG_INVALID)', () => {
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--nope'], env: {} }))).toBe('USAGE');
    expect(codeOf(() => loadAgentConfig({ argv: [], env: {} }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--listen', 'nowhere'], env: {} }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--listen', '1.2.3.4:70000'], env: {} }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c'], env: { GAXX_ENV: 'staging' } }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--capacity', '0'], env: {} }))).toBe('CONFIG_INVALID');
    // A duration without a unit is refused: 30 could be 30 ms or 30 s.
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--default-timeout', '30'], env: {} }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--metrics-listen', 'nonsense'], env: {} }))).toBe('CONFIG_INVALID');
    // Defaults no request could ask for (a request's own limits: 168h, 64MiB).
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--default-timeout', '169h'], env: {} }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--default-output-cap', '65MiB'], env: {} }))).toBe('CONFIG_INVALID');
    expect(loadAgentConfig({ argv: ['--certs', '/c', '--default-timeout', '168h', '--default-output-cap', '64MiB'], env: {} })).toMatchObject({
      defaultTimeoutMs: 168 * 3_600_000,
      defaultOutputCapBytes: 64 * 1024 ** 2,
    });
    // A dir tasks may write may not hold the agent's own dirs, nor lie in them.
    const dirs = ['--certs', '/srv/a/certs', '--data-dir', '/srv/a/data'];
    for (const w of ['/srv', '/srv/a', '/srv/a/data', '/srv/a/data/shared', '/srv/a/certs', '/srv/a/data-state'])
      expect(codeOf(() => loadAgentConfig({ argv: [...dirs, '--task-writable', w], env: {} }))).toBe('CONFIG_INVALID');
    expect(loadAgentConfig({ argv: [...dirs, '--task-writable', '/srv/shared:/srv/a/..cfg'], env: {} }).taskWritable).toEqual(['/srv/shared', '/srv/a/..cfg']);
    // A dir hidden from tasks may not hold their data dir or a dir they may write, and is absolute.
    for (const h of ['/srv', '/srv/a', '/srv/a/data', 'relative/dir'])
      expect(
        codeOf(() => loadAgentConfig({ argv: [...dirs, '--task-hidden', h], env: {} })),
        h,
      ).toBe('CONFIG_INVALID');
    expect(codeOf(() => loadAgentConfig({ argv: [...dirs, '--task-writable', '/srv/w/x', '--task-hidden', '/srv/w'], env: {} }))).toBe('CONFIG_INVALID');
    expect(loadAgentConfig({ argv: [...dirs], env: { GAXX_AGENT_TASK_HIDDEN: '/home/op/.config/gaxx:/srv/a/data-keys' } }).taskHidden).toEqual([
      '/home/op/.config/gaxx',
      '/srv/a/data-keys',
    ]);
    expect(loadAgentConfig({ argv: [...dirs], env: {} }).taskHidden).toEqual([]);
    // --task-retention: at least a second.
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--task-retention', '500ms'], env: {} }))).toBe('CONFIG_INVALID');
  });

  it('keeps the task journal outside the data dir: refused inside it, beside it by default', () => {
    const inside = ['--certs', '/c', '--data-dir', '/srv/data', '--state-dir', '/srv/data/state'];
    expect(codeOf(() => loadAgentConfig({ argv: inside, env: {} }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--data-dir', '/srv/data', '--state-dir', '/srv/data/'], env: {} }))).toBe('CONFIG_INVALID');
    expect(loadAgentConfig({ argv: ['--certs', '/c', '--data-dir', '/srv/data'], env: {} }).stateDir).toBe('/srv/data-state');
    expect(loadAgentConfig({ argv: ['--certs', '/c', '--data-dir', '/srv/data', '--state-dir', '/srv/data2'], env: {} }).stateDir).toBe('/srv/data2');
  });

  it('reads when its fleet was created (--fleet-since, GAXX_AGENT_FLEET_SINCE) in Unix ms, none by default, and refuses anything else', () => {
    expect(loadAgentConfig({ argv: ['--certs', '/c'], env: {} }).fleetSinceUnixMs).toBeUndefined();
    expect(loadAgentConfig({ argv: ['--certs', '/c', '--fleet-since', '1767225600000'], env: {} }).fleetSinceUnixMs).toBe(1_767_225_600_000);
    expect(loadAgentConfig({ argv: ['--certs', '/c'], env: { GAXX_AGENT_FLEET_SINCE: '1767225600123' } }).fleetSinceUnixMs).toBe(1_767_225_600_123);
    // The flag wins over the env.
    expect(
      loadAgentConfig({ argv: ['--certs', '/c', '--fleet-since', '1767225600000'], env: { GAXX_AGENT_FLEET_SINCE: '1767225699999' } }).fleetSinceUnixMs,
    ).toBe(1_767_225_600_000);
    // Not a count of milliseconds: an ISO time, a negative, a fraction, seconds for ms, past a Date's range, empty, hex.
    for (const bad of ['2026-01-01T00:00:00Z', '-1', '1767225600000.5', '1767225600', '9999999999999999', '', '0x19b7', ' 1767225600000'])
      expect(
        codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', `--fleet-since=${bad}`], env: {} })),
        bad,
      ).toBe('CONFIG_INVALID');
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c'], env: { GAXX_AGENT_FLEET_SINCE: 'yesterday' } }))).toBe('CONFIG_INVALID');
    expect(codeOf(() => loadAgentConfig({ argv: ['--certs', '/c', '--fleet-since'], env: {} }))).toBe('USAGE');
  });
});
