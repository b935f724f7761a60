// The bundles carry ioredis with its command methods added to a prototype in dictionary mode
// (scripts/ioredis-commands.mjs): the bundled client must have exactly the methods of the
// installed ioredis, none of the patch's helper properties, and the patch must refuse an ioredis
// text it was not written for.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';
import { bundleDir, loadBundled } from '../helpers/bundle.js';

interface Patch {
  ioredisCommandsSource(source: string, file?: string): string;
  IOREDIS_COMMANDER: RegExp;
}
type RedisClass = { prototype: object; default?: RedisClass };

const root = repoRoot();
const require = createRequire(import.meta.url);
const commanderFile = join(require.resolve('ioredis').replace(/built[\\/].*$/, 'built'), 'utils', 'Commander.js');
const vendorFile = join(bundleDir, 'vendor-ioredis.cjs');
let patch: Patch;

beforeAll(async () => {
  patch = (await import(pathToFileURL(join(root, 'scripts', 'ioredis-commands.mjs')).href)) as Patch;
  // `npm test` builds the bundle first.
  expect(existsSync(vendorFile), `${vendorFile} missing: run npm run build`).toBe(true);
});

/** Commander.prototype of an ioredis module: what Redis.prototype inherits from. */
function commanderPrototype(mod: RedisClass): object {
  const Redis = mod.default ?? mod;
  return Object.getPrototypeOf(Redis.prototype) as object;
}

describe('ioredis command methods (the bundles)', () => {
  it('is what the bundle carries, and patches the installed ioredis', () => {
    expect(existsSync(commanderFile)).toBe(true);
    expect(patch.IOREDIS_COMMANDER.test(commanderFile)).toBe(true);
    const patched = patch.ioredisCommandsSource(readFileSync(commanderFile, 'utf8'));
    expect(patched).toContain('delete Commander.prototype.__gaxxDictionaryB;');
    expect(readFileSync(vendorFile, 'utf8')).toContain('delete Commander.prototype.__gaxxDictionaryB;');
  });

  it('defines the methods the installed ioredis defines, and nothing else', () => {
    const mine = commanderPrototype(loadBundled<RedisClass>('vendor-ioredis.cjs'));
    const theirs = commanderPrototype(require('ioredis') as RedisClass);
    expect(mine).not.toBe(theirs);
    const names = Object.getOwnPropertyNames(theirs).sort();
    expect(names.length).toBeGreaterThan(500);
    expect(names).toContain('hgetallBuffer');
    expect(Object.getOwnPropertyNames(mine).sort()).toEqual(names);
    for (const name of names) {
      const m = Object.getOwnPropertyDescriptor(mine, name);
      const t = Object.getOwnPropertyDescriptor(theirs, name);
      expect(typeof m?.value, name).toBe(typeof t?.value);
      expect([m?.enumerable, m?.writable, m?.configurable], name).toEqual([t?.enumerable, t?.writable, t?.configurable]);
    }
  });

  it('refuses an ioredis text it was not written for, saying so', () => {
    const source = readFileSync(commanderFile, 'utf8');
    const changed = source.replace(
      'Commander.prototype[commandName] = generateFunction(commandName, commandName, "utf8");',
      'Commander.prototype[commandName] = generateFunction(commandName, commandName);',
    );
    expect(changed).not.toBe(source);
    expect(() => patch.ioredisCommandsSource(changed, 'Commander.js')).toThrow(
      /ioredis's text is not the one scripts\/ioredis-commands\.mjs patches \(missing/,
    );
  });
});
