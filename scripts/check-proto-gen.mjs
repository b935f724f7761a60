#!/usr/bin/env node
// Fails when proto/gen is stale: regenerates into a temp dir and compares file by file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'gaxx-gen-'));
const walk = (dir) =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
try {
  execFileSync(process.execPath, [join(root, 'scripts', 'gen-proto.mjs'), tmp], { stdio: 'inherit' });
  const committed = join(root, 'proto', 'gen');
  const want = walk(tmp)
    .map((p) => relative(tmp, p))
    .sort();
  let have = [];
  try {
    have = walk(committed)
      .map((p) => relative(committed, p))
      .sort();
  } catch {
    /* missing dir: reported below */
  }
  const stale = want.filter((f) => !have.includes(f) || readFileSync(join(tmp, f), 'utf8') !== readFileSync(join(committed, f), 'utf8'));
  const extra = have.filter((f) => !want.includes(f));
  if (stale.length || extra.length) {
    console.error(`proto/gen is stale (${[...stale, ...extra].join(', ')}): run npm run gen:proto and commit`);
    process.exit(1);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
