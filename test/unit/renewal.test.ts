// The renewal decisions of scheduler/renewal.ts: no network. (The daemon's settings: cli-config.test.ts.)
import { describe, expect, it } from 'vitest';
import type { InfoResponse__Output } from '../../proto/index.js';
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
