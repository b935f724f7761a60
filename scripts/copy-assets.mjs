#!/usr/bin/env node
// Copies the .proto files next to the compiled proto/load.js, so dist/ runs on its own.
import { cpSync, chmodSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROTO_FILES } from './proto-options.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
for (const f of PROTO_FILES) cpSync(join(root, 'proto', f), join(root, 'dist', 'proto', f));
if (existsSync(join(root, 'modules'))) cpSync(join(root, 'modules'), join(root, 'dist', 'modules'), { recursive: true });
for (const bin of ['dist/cli/main.js', 'dist/agent/main.js']) {
  if (existsSync(join(root, bin))) chmodSync(join(root, bin), 0o755);
}
