// The bundles carry msgpackr without its native string extractor (scripts/msgpackr-no-extract.mjs):
// the built BullMQ vendor file holds none of msgpackr-extract's loader (detect-libc,
// node-gyp-build-optional-packages), msgpackr bundled with the plugin packs and unpacks on its
// JavaScript path, and bundled without it the loader is there (so the check can fail).
import { build, type Plugin as EsbuildPlugin } from 'esbuild';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';
import { bundleDir } from '../helpers/bundle.js';

interface Plugin {
  msgpackrNoExtract: EsbuildPlugin;
}

const LOADER = ['msgpackr-extract', 'detect-libc', 'node-gyp-build-optional-packages'];
/** The packages whose files esbuild marked in `text` (`// node_modules/<pkg>/...`). */
const carried = (text: string): string[] => LOADER.filter((p) => text.includes(`// node_modules/${p}/`));

let plugin: Plugin;
let dir: string;

beforeAll(async () => {
  plugin = (await import(pathToFileURL(join(repoRoot(), 'scripts', 'msgpackr-no-extract.mjs')).href)) as Plugin;
  dir = mkdtempSync(join(tmpdir(), 'gaxx-msgpackr-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** msgpackr bundled as the vendor files are (CommonJS, for Node), with or without the plugin; the output file. */
async function bundleMsgpackr(withPlugin: boolean): Promise<string> {
  const outfile = join(dir, withPlugin ? 'with.cjs' : 'without.cjs');
  await build({
    stdin: { contents: "module.exports = require('msgpackr');\n", resolveDir: repoRoot(), loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile,
    external: ['*.node'],
    logLevel: 'silent',
    plugins: withPlugin ? [plugin.msgpackrNoExtract] : [],
  });
  return outfile;
}

describe('msgpackr without its native extractor (the bundles)', () => {
  it("the built BullMQ vendor file carries none of msgpackr-extract's loader", () => {
    const text = readFileSync(join(bundleDir, 'vendor-bullmq.cjs'), 'utf8');
    // It does carry msgpackr (BullMQ packs its scripts' arguments with it).
    expect(text).toContain('// node_modules/msgpackr/');
    expect(carried(text)).toEqual([]);
  });

  it('bundled with the plugin, msgpackr has no extractor and packs and unpacks; without it, the loader is bundled', async () => {
    const withPlugin = await bundleMsgpackr(true);
    expect(carried(readFileSync(withPlugin, 'utf8'))).toEqual([]);
    const msgpackr = createRequire(import.meta.url)(withPlugin) as {
      pack(v: unknown): Buffer;
      unpack(b: Buffer): unknown;
      isNativeAccelerationEnabled: boolean;
    };
    expect(msgpackr.isNativeAccelerationEnabled).toBe(false);
    const value = { name: 'job', data: { argv: ['echo', 'héllo'], n: 3, nested: { s: 'x'.repeat(100) } }, opts: [1, null, true] };
    expect(msgpackr.unpack(msgpackr.pack(value))).toEqual(value);
    expect(carried(readFileSync(await bundleMsgpackr(false), 'utf8'))).toEqual(LOADER);
  });
});
