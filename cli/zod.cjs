'use strict';
/* global require, module */
// zod, loaded when the CLI first validates something with it. CommonJS for the reason
// proto/grpc-modules.cjs gives: a require() inside a function runs when the function is first
// called, in the tsc build (this file is copied to dist/cli) and in the bundle alike. So a command
// run without a config file, GAXX_* settings or flags that name settings, and reading no state
// file (gaxx exec), does not set zod up: its classes and the config's schema cost `gaxx exec`
// ~4 ms and ~190 page faults. Types: zod.d.cts.

/** The zod module, loaded on the first call. */
function zod() {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy by design, see above
  return require('zod');
}

module.exports = { zod };
