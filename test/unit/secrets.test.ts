import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BearerToken, presentedToken, secretWeakness } from '../../agent/auth/secrets.js';
import { isGaxxError } from '../../proto/index.js';

const hex = randomBytes(32).toString('hex');
const b64url = randomBytes(32).toString('base64url');

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (e) {
    return isGaxxError(e) ? e.code : 'other';
  }
}

describe('secret strength', () => {
  it.each([
    'changeme',
    'password',
    'Password123!',
    'secret',
    'token',
    'test',
    'admin',
    'admin1234',
    '1234567890',
    'abcdefghijklmnop',
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    '<your-token-here>',
    '${GAXX_AGENT_TOKEN}',
    'xxxxxxxx',
    randomBytes(16).toString('hex'),
    randomBytes(24).toString('base64url'),
    'ab'.repeat(40),
    '0123456789abcdef'.repeat(4),
    'Password1!'.repeat(5),
    randomBytes(12).toString('base64url').repeat(3),
    `${randomBytes(8).toString('hex')}`.repeat(4),
  ])('refuses %s with WEAK_SECRET, without echoing it', (weak) => {
    expect(secretWeakness(weak)).toBeDefined();
    try {
      BearerToken.fromValue(weak);
      expect.unreachable();
    } catch (e) {
      expect(isGaxxError(e) && e.code).toBe('WEAK_SECRET');
      expect((e as Error).message).not.toContain(weak);
    }
  });

  it('accepts 32 random bytes as hex or base64url, and no token at all', () => {
    expect(secretWeakness(hex)).toBeUndefined();
    expect(secretWeakness(b64url)).toBeUndefined();
    expect(BearerToken.fromValue(undefined)).toBeUndefined();
    expect(BearerToken.fromValue('')).toBeUndefined();
    expect(codeOf(() => BearerToken.fromValue(hex))).toBe('none');
  });
});

describe('bearer token', () => {
  it('matches only the exact value', () => {
    const t = BearerToken.fromValue(hex) as BearerToken;
    expect(t.matches(hex)).toBe(true);
    expect(t.matches(`${hex}x`)).toBe(false);
    expect(t.matches(hex.slice(1))).toBe(false);
    expect(t.matches('')).toBe(false);
    expect(t.matches(undefined)).toBe(false);
    expect(presentedToken(`Bearer ${hex}`)).toBe(hex);
    expect(presentedToken(hex)).toBeUndefined();
  });

  it('never prints its value: String, JSON, inspect, pino', () => {
    const t = BearerToken.fromValue(hex) as BearerToken;
    let logged = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logged += chunk.toString();
        cb();
      },
    });
    pino({}, sink).info({ token: t, cfg: { token: t } }, 'started');
    const all = [String(t), JSON.stringify({ t }), inspect(t), inspect({ t }, { depth: 5 }), logged].join('\n');
    expect(all).not.toContain(hex);
    expect(all).toContain('redacted');
    expect(logged).toContain('"token":"[redacted]"');
  });
});
