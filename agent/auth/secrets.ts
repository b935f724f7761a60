/**
 * Secrets the agent is given, starting with the optional bearer token `GAXX_AGENT_TOKEN` (a
 * second factor on top of the client certificate). A weak token is refused at start
 * (WEAK_SECRET); a presented token is compared in constant time; the value never reaches a log:
 * BearerToken keeps it in a private field and prints as `[redacted]`.
 *
 * The strength rule, in order:
 * 1. not a known default or placeholder (changeme, password, secret, token, test, admin, ... with
 *    or without trailing digits/punctuation, `<...>`, `${...}`, `xxx...`);
 * 2. at least 256 bits by the charset estimate `length * log2(charset)`, the charset being the
 *    smallest of hex (16), base64url/base64 (64) or printable ASCII (95) that holds every
 *    character: at least 64 hex characters, 43 base64url characters or 39 printable ones;
 * 3. no long repetition: the string's own character distribution carries at least 3 bits per
 *    character (Shannon), which random hex (~3.9) and base64url (~5) pass and `abab...` fails.
 * `openssl rand -hex 32` or `openssl rand -base64 32` give a token that passes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { GaxxError } from '../../proto/index.js';

/** Minimum estimated entropy, in bits. */
export const MIN_SECRET_BITS = 256;

const WEAK_WORDS =
  /^(changeme|change-me|change_me|password|passwd|secret|token|test|testing|admin|administrator|default|example|letmein|qwerty|gaxx|agent|root|guest|none|null|undefined)[\d!._-]*$/i;
const PLACEHOLDER = /^(<.*>|\$\{.*\}|\{\{.*\}\}|x+|\*+|\.+|todo.*|fixme.*|your[-_ ]?(token|secret).*)$/i;

function sequential(s: string): boolean {
  if (s.length < 4) return false;
  const d = s.charCodeAt(1) - s.charCodeAt(0);
  if (Math.abs(d) !== 1) return false;
  for (let i = 2; i < s.length; i++) if (s.charCodeAt(i) - s.charCodeAt(i - 1) !== d) return false;
  return true;
}

/**
 * Whether `s` repeats itself: a shorter unit over and over (`0123456789abcdef` x4, `Password1!`
 * x5), or so few distinct 4-character pieces that most of it is copies of the rest. A random
 * token of 43+ characters has nearly all its 4-grams distinct.
 */
export function repetitive(s: string): boolean {
  for (let p = 1; p <= s.length / 2; p++) {
    let i = p;
    while (i < s.length && s[i] === s[i - p]) i++;
    if (i === s.length) return true;
  }
  if (s.length < 16) return false;
  const grams = new Set<string>();
  for (let i = 0; i + 4 <= s.length; i++) grams.add(s.slice(i, i + 4));
  return grams.size < (s.length - 3) / 2;
}

/** Estimated bits: length times log2 of the smallest standard charset holding the string. */
export function estimateBits(s: string): number {
  const charset = /^[0-9a-fA-F]+$/.test(s) ? 16 : /^[A-Za-z0-9_\-+/=]+$/.test(s) ? 64 : 95;
  return s.length * Math.log2(charset);
}

/** Shannon entropy of the string's own characters, bits per character. */
export function shannonBitsPerChar(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) h -= (n / s.length) * Math.log2(n / s.length);
  return h;
}

/** Why `value` is too weak to be a secret, or undefined when it passes the rule above. */
export function secretWeakness(value: string): string | undefined {
  const v = value.trim();
  if (v.length === 0) return 'it is empty';
  if (WEAK_WORDS.test(v) || PLACEHOLDER.test(v)) return 'it is a known default or placeholder';
  if (sequential(v) || new Set(v).size === 1) return 'it is a run of repeated or consecutive characters';
  if (repetitive(v)) return 'it repeats a pattern';
  if (estimateBits(v) < MIN_SECRET_BITS)
    return `it carries about ${Math.floor(estimateBits(v))} bits; at least ${MIN_SECRET_BITS} are required (e.g. 64 hex or 43 base64url characters)`;
  if (shannonBitsPerChar(v) < 3) return 'it repeats too few characters to be random';
  return undefined;
}

/** A bearer token: checked for strength once, compared in constant time, never printed. */
export class BearerToken {
  readonly #digest: Buffer;

  private constructor(value: string) {
    this.#digest = createHash('sha256').update(value, 'utf8').digest();
  }

  /**
   * The token from its configured value (e.g. GAXX_AGENT_TOKEN), undefined when unset or empty.
   * WEAK_SECRET (naming `what`, never the value) when it fails the strength rule.
   */
  static fromValue(value: string | undefined, what = 'GAXX_AGENT_TOKEN'): BearerToken | undefined {
    if (value === undefined || value === '') return undefined;
    const weak = secretWeakness(value);
    if (weak) throw new GaxxError('WEAK_SECRET', `${what} is refused: ${weak}`);
    return new BearerToken(value.trim());
  }

  /** Constant-time comparison (over sha256 digests, so lengths do not leak either). */
  matches(presented: string | undefined): boolean {
    const candidate = createHash('sha256')
      .update(presented ?? '', 'utf8')
      .digest();
    return timingSafeEqual(candidate, this.#digest) && presented !== undefined;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'BearerToken [redacted]';
  }
}

/** The token presented in call metadata: `authorization: Bearer <token>`. */
export function presentedToken(authorization: string | undefined): string | undefined {
  const m = /^Bearer ([^\s]+)$/.exec(authorization ?? '');
  return m?.[1];
}
