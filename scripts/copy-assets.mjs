#!/usr/bin/env node
// Copies the .proto files next to the compiled proto/load.js, and the dashboard's page with
// the charting library (uPlot, from node_modules) next to scheduler/ui, so dist/ runs on its own.
import { cpSync, chmodSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROTO_FILES } from './proto-options.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
for (const f of PROTO_FILES) cpSync(join(root, 'proto', f), join(root, 'dist', 'proto', f));
if (existsSync(join(root, 'modules'))) cpSync(join(root, 'modules'), join(root, 'dist', 'modules'), { recursive: true });
cpSync(join(root, 'scheduler', 'ui', 'assets'), join(root, 'dist', 'scheduler', 'ui', 'assets'), { recursive: true });
for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) {
  cpSync(join(root, 'node_modules', 'uplot', 'dist', f), join(root, 'dist', 'scheduler', 'ui', 'assets', 'vendor', f));
}
for (const bin of ['dist/cli/main.js', 'dist/agent/main.js']) {
  if (existsSync(join(root, bin))) chmodSync(join(root, bin), 0o755);
}
