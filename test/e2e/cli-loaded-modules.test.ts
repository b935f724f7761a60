// What `gaxx --version` and `gaxx --help` load: no queue code (BullMQ, ioredis), no grpc-js, in
// the bundle (the package's bin) and in the tsc build. A preload records every module file the
// process loads (ES modules through a loader hook, CommonJS through Module._load); a file counts
// as queue code when it is a package's own file or a bundle chunk that carries it (esbuild
// marks each bundled file with a `// node_modules/<pkg>/...` comment).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';
import { CLI_MAIN, runGaxx } from '../helpers/cli.js';

let dir: string;
let preload: string;

const HOOKS = `
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (url.startsWith('file:')) appendFileSync(process.env.GAXX_TEST_LOAD_LOG, url + '\\n');
  return next(url, context);
}`;

const PRELOAD = `
import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}));
const load = Module._load;
Module._load = function (request, parent, isMain) {
  try {
    appendFileSync(process.env.GAXX_TEST_LOAD_LOG, pathToFileURL(Module._resolveFilename(request, parent, isMain)).href + '\\n');
  } catch {}
  return load.apply(this, arguments);
};`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gaxx-loaded-'));
  preload = join(dir, 'record.mjs');
  writeFileSync(preload, PRELOAD);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI with the recording preload; the module files it loaded. */
function loadedFiles(main: string, args: string[]): Promise<{ code: number; files: string[] }> {
  const log = join(dir, `log-${Math.random().toString(36).slice(2)}`);
  writeFileSync(log, '');
  return runGaxx(args, { main, nodeArgs: ['--import', preload], home: dir, env: { GAXX_TEST_LOAD_LOG: log } }).then(({ code }) => {
    const files = [
      ...new Set(
        readFileSync(log, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('file:'))
          .map((u) => fileURLToPath(u)),
      ),
    ];
    return { code, files };
  });
}

/** The loaded files that are, or carry, package `pkg`'s code. */
function carrying(files: string[], pkg: string): string[] {
  return files.filter(
    (f) => f.includes(`/node_modules/${pkg}/`) || (f.includes('/dist/bundle/') && readFileSync(f, 'utf8').includes(`// node_modules/${pkg}/`)),
  );
}

const QUEUE = ['bullmq', 'ioredis'];
const builds = [
  ['the bundle', CLI_MAIN],
  ['the tsc build', join(repoRoot(), 'dist', 'cli', 'main.js')],
] as const;

describe.each(builds)('modules loaded by %s', (_name, main) => {
  it.each([['--version'], ['--help']])('gaxx %s loads no queue code and no grpc-js', async (flag) => {
    const r = await loadedFiles(main, [flag]);
    expect(r.code).toBe(0);
    expect(r.files.length).toBeGreaterThan(0);
    for (const pkg of [...QUEUE, '@grpc/grpc-js']) expect(carrying(r.files, pkg)).toEqual([]);
  });

  it('gaxx exec --help loads the exec command and the agent client, but no queue code', async () => {
    const r = await loadedFiles(main, ['exec', '--help']);
    expect(r.code).toBe(0);
    // The command's own module was loaded (exec.js, or its bundle chunk exec-<hash>.mjs).
    expect(r.files.some((f) => /^exec(-[A-Z0-9]+)?\.m?js$/.test(basename(f)))).toBe(true);
    for (const pkg of [...QUEUE, 'prom-client']) expect(carrying(r.files, pkg)).toEqual([]);
  });

  it('the recording sees queue code where a command loads it (gaxx scheduler --help)', async () => {
    const r = await loadedFiles(main, ['scheduler', '--help']);
    expect(r.code).toBe(0);
    for (const pkg of QUEUE) expect(carrying(r.files, pkg).length).toBeGreaterThan(0);
  });
});
