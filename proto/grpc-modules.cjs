'use strict';
/* global require, module */
// grpc-js and proto-loader, loaded on first use. CommonJS on purpose: a require() inside a
// function runs when the function is first called, in the tsc build (this file is copied to
// dist/proto) and in the esbuild bundles (which carry both packages) alike. So importing
// proto/index.ts for GaxxError, as every CLI command does, does not load grpc-js, and
// `gaxx --version` stays fast. Types: grpc-modules.d.cts.

/** The grpc-js and proto-loader modules, each loaded when first read. */
function grpcModules() {
  return {
    get grpc() {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy by design, see above
      return require('@grpc/grpc-js');
    },
    get protoLoader() {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy by design, see above
      return require('@grpc/proto-loader');
    },
  };
}

module.exports = { grpcModules };
