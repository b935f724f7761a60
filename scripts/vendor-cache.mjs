#!/usr/bin/env node
// Makes the V8 code caches of the CLI's vendor files (see vendor-load.cjs): loads grpc-js and
// proto-loader through the loader, uses them as a command does (package definitions of both
// services, a client that never connects), then writes what V8 compiled beside each file.
// Usage: node scripts/vendor-cache.mjs <bundle dir>   (run by scripts/bundle.mjs)
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = resolve(process.argv[2] ?? '');
const { loadVendor, scripts } = createRequire(join(dir, 'index.cjs'))('./vendor-load.cjs');
const grpc = loadVendor('vendor-grpc-js.cjs');
const protoLoader = loadVendor('vendor-proto-loader.cjs');

// The descriptors and loader options from the tsc build, when there is one (npm run build).
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'proto');
if (existsSync(join(dist, 'load.js'))) {
  const { AGENT_PROTO, HEALTH_PROTO } = await import(pathToFileURL(join(dist, 'gen', 'descriptors.js')).href);
  const { LOADER_OPTIONS } = await import(pathToFileURL(join(dist, 'load.js')).href);
  for (const json of [AGENT_PROTO, HEALTH_PROTO]) {
    const pkg = grpc.loadPackageDefinition(protoLoader.fromJSON(json, LOADER_OPTIONS));
    const service = json === AGENT_PROTO ? pkg.gaxx.agent.v1.Agent : pkg.grpc.health.v1.Health;
    // insecure-ok: build time only; the client is made to compile grpc-js's code paths for the cache and closed before it connects.
    new service('127.0.0.1:1', grpc.credentials.createInsecure()).close();
  }
}
for (const [file, script] of scripts) writeFileSync(`${file}.v8cache`, script.createCachedData());
