#!/usr/bin/env node
// Generates proto/gen (TypeScript types for the .proto files) with proto-loader-gen-types.
// Usage: node scripts/gen-proto.mjs [OUT_DIR]   (default: proto/gen)
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROTO_FILES } from './proto-options.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(root, 'proto', 'gen'));
rmSync(out, { recursive: true, force: true });
const bin = join(root, 'node_modules', '.bin', 'proto-loader-gen-types');
execFileSync(
  bin,
  [
    '--longs=Number', '--enums=String', '--defaults', '--oneofs', '--grpcLib=@grpc/grpc-js',
    '--importFileExtension=.js', '-I', '.', '-O', out,
    ...PROTO_FILES,
  ],
  // Relative paths: the generated files name their source, and must not depend on the checkout.
  { cwd: join(root, 'proto'), stdio: ['ignore', 'ignore', 'inherit'] },
);
