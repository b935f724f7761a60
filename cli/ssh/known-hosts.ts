/**
 * known_hosts for gaxx: parse OpenSSH files (plain, hashed `|1|salt|hash`, `[host]:port`,
 * patterns with `*`, `?` and `!`), verify a presented host key against gaxx's own file (under
 * GAXX_HOME) and the user's, add entries to gaxx's file and remove a fleet's entries.
 * `@revoked` keys are refused; `@cert-authority` lines are skipped (gaxx pins plain host keys).
 * Trust on first use happens only when the caller passes acceptNew explicitly.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../certs/index.js';
import { GaxxError, makeDirs, withFileLockSync } from '../../proto/index.js';
import { fingerprintOf } from './keys.js';

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  marker: 'revoked' | undefined;
  /** The host field as written: comma-separated patterns or one `|1|salt|hash`. */
  hosts: string;
  keyType: string;
  /** base64 of the key blob. */
  key: string;
  comment: string;
  source: string;
  line: number;
}

/** The verdict for a presented key. */
export type HostKeyVerdict = 'match' | 'mismatch' | 'unknown' | 'revoked';

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostLookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Parses a known_hosts text; comments, blank, `@cert-authority` and malformed lines are skipped. */
export function parseKnownHosts(text: string, source = '<text>'): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      if (fields[0] !== '@revoked') return; // @cert-authority and unknown markers: not for plain keys
      marker = 'revoked';
      fields.shift();
    }
    const [hosts, keyType, key, ...rest] = fields;
    if (!hosts || !keyType || !key || !/^[A-Za-z0-9+/]+={0,2}$/.test(key)) return;
    out.push({ marker, hosts, keyType, key, comment: rest.join(' '), source, line: i + 1 });
  });
  return out;
}

function hashedMatches(field: string, name: string): boolean {
  const parts = field.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2] ?? '', 'base64');
  const want = Buffer.from(parts[3] ?? '', 'base64');
  const got = createHmac('sha1', salt).update(name).digest();
  return got.length === want.length && got.equals(want);
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** True when the entry's host field names `host` on `port` (negations win, as in OpenSSH). */
export function entryMatches(entry: Pick<KnownHostEntry, 'hosts'>, host: string, port: number): boolean {
  const name = hostLookupName(host, port);
  if (entry.hosts.startsWith('|')) return hashedMatches(entry.hosts, name);
  let matched = false;
  for (const p of entry.hosts.split(',')) {
    const negated = p.startsWith('!');
    const pattern = negated ? p.slice(1) : p;
    if (!globToRegExp(pattern).test(name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** Verdict of a presented key (type + base64 blob) for host:port against entries. */
export function checkHostKey(entries: KnownHostEntry[], host: string, port: number, keyType: string, key: string): HostKeyVerdict {
  const forHost = entries.filter((e) => entryMatches(e, host, port));
  if (forHost.some((e) => e.marker === 'revoked' && e.key === key)) return 'revoked';
  const usable = forHost.filter((e) => e.marker === undefined);
  if (usable.some((e) => e.keyType === keyType && e.key === key)) return 'match';
  return usable.length > 0 ? 'mismatch' : 'unknown';
}

/** A hashed host field, as `ssh-keygen -H` writes it. */
export function hashHostName(name: string, salt = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

/** The `key type` and base64 blob of an SSH key blob (the type is the blob's first string). */
export function describeKeyBlob(blob: Buffer): { keyType: string; key: string } {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const keyType = len > 0 && len < blob.length ? blob.subarray(4, 4 + len).toString('latin1') : 'unknown';
  return { keyType, key: blob.toString('base64') };
}

const FLEET_TAG = 'gaxx-fleet=';

/** gaxx's own known_hosts plus the user's, read-only; only gaxx's file is ever written. */
export class KnownHosts {
  constructor(
    /** gaxx's own file, e.g. `<config>/ssh/known_hosts`. */
    readonly ownFile: string,
    /** Further files consulted for verification only (e.g. ~/.ssh/known_hosts). */
    readonly userFiles: string[] = [],
  ) {}

  /** Every entry of every file that exists. */
  entries(): KnownHostEntry[] {
    return [this.ownFile, ...this.userFiles].flatMap((f) => (existsSync(f) ? parseKnownHosts(readFileSync(f, 'utf8'), f) : []));
  }

  /**
   * Verifies a presented host key blob. Returns 'match', or 'added' when the host was unknown
   * and acceptNew is set (the key is then recorded for `fleet`). Throws HOST_KEY_MISMATCH for a
   * changed or revoked key and HOST_KEY_UNKNOWN for an unknown host without acceptNew.
   */
  verify(host: string, port: number, blob: Buffer, opts: { acceptNew?: boolean; fleet?: string } = {}): 'match' | 'added' {
    const { keyType, key } = describeKeyBlob(blob);
    const judged = this.judge(host, port, blob, keyType, key, opts.acceptNew === true);
    if (judged === 'match') return 'match';
    // Trusted on first use, holding the file's lock: a key another gaxx recorded for the host
    // meanwhile (a bootstrap of another fleet at the same address) is judged, not replaced.
    return this.changing(() => {
      if (this.judge(host, port, blob, keyType, key, true) === 'match') return 'match';
      this.record(host, port, keyType, key, opts.fleet);
      return 'added';
    });
  }

  /** 'match', or 'unknown' when `acceptNew`; else throws as verify says. */
  private judge(host: string, port: number, blob: Buffer, keyType: string, key: string, acceptNew: boolean): 'match' | 'unknown' {
    const verdict = checkHostKey(this.entries(), host, port, keyType, key);
    const where = hostLookupName(host, port);
    if (verdict === 'match') return 'match';
    if (verdict === 'revoked') throw new GaxxError('HOST_KEY_MISMATCH', `${where} presented a revoked host key ${fingerprintOf(blob)}`);
    if (verdict === 'mismatch') {
      throw new GaxxError('HOST_KEY_MISMATCH', `${where} presented host key ${fingerprintOf(blob)}, which does not match known_hosts: refusing to connect`);
    }
    if (!acceptNew) {
      throw new GaxxError('HOST_KEY_UNKNOWN', `${where} is not in known_hosts (${fingerprintOf(blob)}); pass --accept-new to trust it on first use`);
    }
    return 'unknown';
  }

  /** Records `keyLine` (`type base64`) for host:port in gaxx's file, tagged with the fleet. */
  add(host: string, port: number, keyLine: string, fleet?: string): void {
    const [keyType, key] = keyLine.trim().split(/\s+/);
    if (!keyType || !key) throw new GaxxError('INVALID_ARGUMENT', `not an OpenSSH public key: ${keyLine.slice(0, 40)}`);
    this.changing(() => this.record(host, port, keyType, key, fleet));
  }

  /** add's change of gaxx's file, made holding its lock. */
  private record(host: string, port: number, keyType: string, key: string, fleet: string | undefined): void {
    const existing = existsSync(this.ownFile) ? readFileSync(this.ownFile, 'utf8') : '';
    // A re-used address (a new VM on an old IP) replaces the old entry of gaxx's own file.
    const kept = existing.split('\n').filter((l) => {
      const e = parseKnownHosts(l)[0];
      return l.trim() !== '' && !(e && entryMatches(e, host, port));
    });
    kept.push(`${hostLookupName(host, port)} ${keyType} ${key}${fleet ? ` ${FLEET_TAG}${fleet}` : ''}`);
    writeFileAtomic(this.ownFile, kept.join('\n') + '\n', 0o600);
  }

  /** Removes every entry of gaxx's own file recorded for `fleet`; returns how many. */
  removeFleet(fleet: string): number {
    if (!existsSync(this.ownFile)) return 0;
    return this.changing(() => {
      const lines = readFileSync(this.ownFile, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '');
      const kept = lines.filter((l) => !l.split(/\s+/).slice(3).includes(`${FLEET_TAG}${fleet}`));
      if (kept.length !== lines.length) writeFileAtomic(this.ownFile, kept.length ? kept.join('\n') + '\n' : '', 0o600);
      return lines.length - kept.length;
    });
  }

  /**
   * Runs a change of gaxx's own file holding its lock (`<file>.lock`): bootstraps of several
   * fleets at once, and a delete beside them, each read, change and write it back.
   */
  private changing<T>(change: () => T): T {
    makeDirs(dirname(this.ownFile), { mode: 0o700 });
    return withFileLockSync(`${this.ownFile}.lock`, `gaxx's known_hosts ${this.ownFile}`, change);
  }
}
