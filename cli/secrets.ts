/**
 * Provider API tokens: from `<config>/secrets.env` (KEY=VALUE lines; refused with
 * INSECURE_FILE_MODE unless only its owner can read it) or from the environment (LINODE_TOKEN,
 * VULTR_API_KEY), never from a flag. A token is held in a Secret, which prints as [redacted] in
 * logs, JSON and util.inspect, so it cannot leak through a diagnostic by accident.
 */
import { join } from 'node:path';
import { inspect } from 'node:util';
import { readPrivateFile } from '../certs/index.js';
import { GaxxError, isGaxxError } from '../proto/index.js';

/** A secret value: `reveal()` is the one way to read it. */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return '[redacted]';
  }
}

/** The secrets file of an installation. */
export function secretsFile(configDir: string): string {
  return join(configDir, 'secrets.env');
}

/**
 * Parses secrets.env text: `KEY=VALUE` per line, `#` comments, optional `export `, optional
 * single or double quotes around the value. CONFIG_INVALID names the line (never its value).
 */
export function parseSecretsEnv(text: string, path = 'secrets.env'): Map<string, Secret> {
  const out = new Map<string, Secret>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new GaxxError('CONFIG_INVALID', `${path}:${i + 1}: expected KEY=VALUE`);
    let value = m[2] as string;
    if (/^(['"]).*\1$/.test(value) && value.length >= 2) value = value.slice(1, -1);
    out.set(m[1] as string, new Secret(value));
  });
  return out;
}

/** Reads secrets.env: empty when absent, INSECURE_FILE_MODE when group or others can read it. */
export function readSecretsEnv(configDir: string): Map<string, Secret> {
  const path = secretsFile(configDir);
  let text: string;
  try {
    text = readPrivateFile(path, 'secrets file').toString('utf8');
  } catch (e) {
    if (isGaxxError(e, 'NOT_FOUND')) return new Map();
    throw e;
  }
  return parseSecretsEnv(text, path);
}

/**
 * A provider's token: the environment's when set, else secrets.env's. The secrets file is checked
 * in both cases, so an unsafe file is reported even while the environment hides it.
 */
export function providerToken(configDir: string, envName: string, fromEnv: Secret | undefined): Secret | undefined {
  const file = readSecretsEnv(configDir);
  const value = fromEnv ?? file.get(envName);
  return value && value.reveal() !== '' ? value : undefined;
}
