// The renewal decisions of scheduler/renewal.ts and the daemon's interval parsing: no network.
import { describe, expect, it } from 'vitest';
import type { InfoResponse__Output } from '../../proto/index.js';
import { parseInterval, renewalSettings } from '../../scheduler/renewal/renewer.js';
import { renewalReason } from '../../scheduler/renewal/renewal.js';

const HOUR = 3600_000;
const infoWith = (certRenewalDue: boolean, certNotAfterUnixMs: number) => ({ certRenewalDue, certNotAfterUnixMs }) as InfoResponse__Output;

describe('renewalReason', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('follows what the agent reports, whatever the margin', () => {
    expect(renewalReason(infoWith(true, now + 10 * HOUR), 0, now)).toBe('due');
    expect(renewalReason(infoWith(true, now + 10 * HOUR), HOUR, now)).toBe('due');
    expect(renewalReason(infoWith(false, now + 10 * HOUR), HOUR, now)).toBeUndefined();
  });

  it('renews a certificate ending within the margin even when the agent does not ask', () => {
    expect(renewalReason(infoWith(false, now + HOUR - 1), HOUR, now)).toBe('expiring');
    expect(renewalReason(infoWith(false, now + HOUR + 1), HOUR, now)).toBeUndefined();
    // No margin (gaxx certs rotate --due-only): only the agent's own report counts.
    expect(renewalReason(infoWith(false, now + 1000), 0, now)).toBeUndefined();
    // An agent that reports no expiry is not guessed about.
    expect(renewalReason(infoWith(false, 0), HOUR, now)).toBeUndefined();
  });
});

describe('parseInterval', () => {
  it('reads 0 (off), bare milliseconds and ms/s/m/h', () => {
    expect(parseInterval('0')).toBe(0);
    expect(parseInterval('1500')).toBe(1500);
    expect(parseInterval('250ms')).toBe(250);
    expect(parseInterval('30s')).toBe(30_000);
    expect(parseInterval('10m')).toBe(600_000);
    expect(parseInterval('2h')).toBe(2 * HOUR);
  });

  it('refuses anything else with CONFIG_INVALID', () => {
    for (const bad of ['', '-1s', '1.5m', '10 min', '1d', 'off']) {
      expect(() => parseInterval(bad), bad).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    }
  });
});

describe('renewalSettings (the daemon process)', () => {
  it('defaults to 10m and the installation under GAXX_HOME, else XDG, else ~/.config', () => {
    expect(renewalSettings({}, { GAXX_HOME: '/g' })).toEqual({ intervalMs: 600_000, caDir: '/g/config/ca', operatorCertDir: '/g/config/operator' });
    expect(renewalSettings({}, { XDG_CONFIG_HOME: '/x', HOME: '/h' }).caDir).toBe('/x/gaxx/ca');
    expect(renewalSettings({}, { XDG_CONFIG_HOME: 'relative', HOME: '/h' }).operatorCertDir).toBe('/h/.config/gaxx/operator');
  });

  it('takes flags over the environment', () => {
    const env = { GAXX_HOME: '/g', GAXX_SCHEDULER_RENEW_INTERVAL: '1h' };
    expect(renewalSettings({}, env).intervalMs).toBe(HOUR);
    expect(renewalSettings({ 'renew-interval': '0', 'ca-dir': '/ca', 'operator-certs': '/op' }, env)).toEqual({ intervalMs: 0, caDir: '/ca', operatorCertDir: '/op' });
  });

  it('refuses a bad flag with USAGE and a bad variable with CONFIG_INVALID', () => {
    expect(() => renewalSettings({ 'renew-interval': 'soon' }, {})).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => renewalSettings({}, { GAXX_SCHEDULER_RENEW_INTERVAL: 'soon' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
