// The build refuses a bundle file that vendor-load.cjs compiles through vm.Script when it still
// calls import() (it would fail only when that line runs); the files it makes today pass.
import { readdirSync, readFileSync } from 'node:fs';
import Module from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';
import { hasCompiler } from '../helpers/bundle.js';

interface Checks {
  KNOWN_DYNAMIC_IMPORTS: Record<string, string[]>;
  dynamicImportLines(text: string, allowed?: string[]): number[];
  assertNoDynamicImport(name: string, text: string): void;
}

let checks: Checks;
beforeAll(async () => {
  checks = (await import(pathToFileURL(join(repoRoot(), 'scripts', 'bundle-checks.mjs')).href)) as Checks;
});

describe('bundle checks', () => {
  it('finds import() calls, and nothing else named import', () => {
    const text = [
      'const a = require("node:fs");',
      '  const { open } = await import("node:fs/promises");',
      'x.import(1); my_import(2); $import(3);',
      'import("yaml").then(() => 0);',
    ].join('\n');
    expect(checks.dynamicImportLines(text)).toEqual([2, 4]);
    expect(() => checks.assertNoDynamicImport('gaxx-cli.cjs', text)).toThrow(
      /gaxx-cli\.cjs: import\(\) at line 2, 4; .*vm\.Script.*ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING/,
    );
  });

  it('lets a vendor file keep only the import() calls listed for it, and only in that file', () => {
    const known = checks.KNOWN_DYNAMIC_IMPORTS['vendor-bullmq.cjs']?.[0] as string;
    const text = `a();\n      ${known}\nb();\n`;
    expect(() => checks.assertNoDynamicImport('vendor-bullmq.cjs', text)).not.toThrow();
    expect(() => checks.assertNoDynamicImport('gaxx-agent.cjs', text)).toThrow(/gaxx-agent\.cjs: import\(\) at line 2;/);
    expect(() => checks.assertNoDynamicImport('vendor-bullmq.cjs', `${text}await import("node:fs/promises");\n`)).toThrow(/at line 4;/);
    // Minified: one line, the listed call beside another, which is refused with its text.
    const minified = `a();const{default:p}=${known};b();await import("node:fs/promises");`;
    expect(() => checks.assertNoDynamicImport('vendor-bullmq.cjs', minified.replace(/;await import\("node:fs\/promises"\);$/, ''))).not.toThrow();
    expect(() => checks.assertNoDynamicImport('vendor-bullmq.cjs', minified)).toThrow(/at line 1; .*the first: ".*await import\(\\"node:fs\/promises\\"\);"/);
  });

  it('passes the files the build made (npm test builds first)', () => {
    const out = join(repoRoot(), 'dist', 'bundle');
    for (const f of ['gaxx-cli.cjs', 'gaxx-agent.cjs', 'vendor-grpc-js.cjs', 'vendor-bullmq.cjs']) {
      const text = readFileSync(join(out, f), 'utf8');
      expect(text.length).toBeGreaterThan(10_000);
      expect(() => checks.assertNoDynamicImport(f, text)).not.toThrow();
    }
  });

  it('keeps the task launcher to its own code: no package (through proto/index.ts it carried grpc-js and protobufjs)', () => {
    const text = readFileSync(join(repoRoot(), 'dist', 'bundle', 'gaxx-launcher.mjs'), 'utf8');
    // esbuild names each input above its code.
    const inputs = text.split('\n').filter((l) => /^\/\/ [\w@.-]+\/\S+\.[cm]?[jt]s$/.test(l));
    expect(inputs).toContain('// agent/exec/launcher-main.ts');
    expect(inputs.filter((l) => !/^\/\/ (agent|proto)\//.test(l))).toEqual([]);
    expect(text.length).toBeLessThan(100_000);
  });

  // scripts/bundle.mjs empties dist/bundle and builds the native spawn itself: run alone, it
  // left a bundle whose launcher forked every task through child_process and prlimit.
  it.runIf(hasCompiler)('ships the launcher its vfork spawn: gaxx-spawn.node beside gaxx-launcher.mjs, a shared object this Node loads', () => {
    const file = join(repoRoot(), 'dist', 'bundle', 'gaxx-spawn.node');
    expect(readFileSync(file).subarray(0, 4)).toEqual(Buffer.from('\x7fELF', 'latin1'));
    const native = Module.createRequire(import.meta.url)(file) as { usable(): number };
    expect(native.usable()).toBe(0);
  });

  it('writes every file vendor-load.cjs compiles in its function wrapper, so none is wrapped (and copied) at load', () => {
    const out = join(repoRoot(), 'dist', 'bundle');
    const head = Module.wrap('\0').split('\0')[0] as string;
    const files = readdirSync(out).filter((f) => /^(gaxx-cli|gaxx-agent|vendor-[\w-]+)\.cjs$/.test(f) && f !== 'vendor-load.cjs');
    expect(files).toEqual(expect.arrayContaining(['gaxx-cli.cjs', 'gaxx-agent.cjs', 'vendor-grpc-js.cjs', 'vendor-proto-loader.cjs']));
    for (const f of files) expect({ f, head: readFileSync(join(out, f), 'latin1').slice(0, head.length) }).toEqual({ f, head });
  });
});
