/**
 * The agent as one bundled file for bootstrap tests: esbuild bundles agent/main.ts (with its
 * npm dependencies) into `gaxx-agent.mjs` in a temp dir, with the .proto files the proto loader
 * reads from beside the bundle. Built once per test process.
 */
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { repoRoot } from './agent.js';

const PROTOS = ['gaxx/agent/v1/agent.proto', 'grpc/health/v1/health.proto'];
let built: Promise<string> | undefined;

async function make(): Promise<string> {
  const root = repoRoot();
  const dir = mkdtempSync(join(tmpdir(), 'gx-agent-bundle-'));
  const outfile = join(dir, 'gaxx-agent.mjs');
  await build({
    entryPoints: [join(root, 'agent', 'main.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    outfile,
    logLevel: 'error',
    // CommonJS dependencies call require(); an ES module has none of its own.
    banner: { js: "import { createRequire as __gaxxCreateRequire } from 'node:module'; const require = __gaxxCreateRequire(import.meta.url);" },
  });
  for (const p of PROTOS) cpSync(join(root, 'proto', p), join(dir, p));
  return outfile;
}

/** Path of the bundled agent (built on first call). */
export function agentBundle(): Promise<string> {
  built ??= make();
  return built;
}
