#!/usr/bin/env node
// Completes dist/ after tsc: hand-written CommonJS (proto/grpc-modules.cjs), scan modules beside
// the code, and executable bins. (The .proto files need no copy: proto/gen/descriptors.ts
// carries them.)
import { cpSync, chmodSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
cpSync(join(root, 'proto', 'grpc-modules.cjs'), join(root, 'dist', 'proto', 'grpc-modules.cjs'));
if (existsSync(join(root, 'modules'))) cpSync(join(root, 'modules'), join(root, 'dist', 'modules'), { recursive: true });
for (const bin of ['dist/cli/main.js', 'dist/agent/main.js']) {
  if (existsSync(join(root, bin))) chmodSync(join(root, bin), 0o755);
}
