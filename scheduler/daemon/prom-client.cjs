'use strict';
/* global require, module */
// prom-client, loaded when the scheduler makes its first metric. CommonJS for the reason
// proto/grpc-modules.cjs gives: a require() inside a function runs when the function is first
// called, in the tsc build (this file is copied to dist/scheduler/daemon) and in the bundle
// alike. So the commands that import the scheduler without serving metrics (gaxx run, status,
// runs...) do not load it (~7 ms); the daemon does, when it makes its metrics. Types:
// prom-client.d.cts.

/** The prom-client module, loaded on the first call. */
function promClient() {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy by design, see above
  return require('prom-client');
}

module.exports = { promClient };
