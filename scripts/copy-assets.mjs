#!/usr/bin/env node
// Completes dist/ after tsc: hand-written CommonJS (proto/grpc-modules.cjs,
// scheduler/daemon/prom-client.cjs and cli/zod.cjs), scan modules beside the code, and
// executable bins. (The .proto files need no copy: proto/gen/descriptors.ts carries them.) And
// the dashboard's page with the charting library (uPlot, from node_modules) next to scheduler/ui.
import { cpSync, chmodSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
for (const f of ['proto/grpc-modules.cjs', 'scheduler/daemon/prom-client.cjs', 'cli/zod.cjs']) cpSync(join(root, f), join(root, 'dist', f));
if (existsSync(join(root, 'modules'))) cpSync(join(root, 'modules'), join(root, 'dist', 'modules'), { recursive: true });
cpSync(join(root, 'scheduler', 'ui', 'assets'), join(root, 'dist', 'scheduler', 'ui', 'assets'), { recursive: true });
for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) {
  cpSync(join(root, 'node_modules', 'uplot', 'dist', f), join(root, 'dist', 'scheduler', 'ui', 'assets', 'vendor', f));
}
for (const bin of ['dist/cli/main.js', 'dist/agent/main.js']) {
  if (existsSync(join(root, bin))) chmodSync(join(root, bin), 0o755);
}
