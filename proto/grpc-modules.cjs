'use strict';
/* global require, module */
// grpc-js and proto-loader, loaded on first use. CommonJS on purpose: a require() inside a
// function runs when the function is first called, in the tsc build (this file is copied to
// dist/proto) and in the esbuild bundles (which carry both packages) alike. So importing
// proto/index.ts for GaxxError, as every CLI command does, does not load grpc-js, and
// `gaxx --version` stays fast. Types: grpc-modules.d.cts.

/** node:net once its checks are colon-first. */
let colonFirstNet;

/**
 * Makes node:net's isIP and isIPv6 look for a colon before they run Node's IPv6 pattern, in this
 * whole process. V8 compiles that pattern (a large one) on its first use, ~8 ms here, whatever
 * the text: grpc-js asks isIPv6 of every address it connects to (IPv4 ones too), and tls.connect
 * asks isIP of the server name (`gaxx-agent` for an agent dialled by IP, see agent-client.ts), so
 * every connecting process paid for it. Every IPv6 address has a colon, so the answers are
 * Node's own: text without one is not IPv6, and text with one is still given to Node's check.
 * Both functions are read off the module object when called (grpc-js's `(0, net_1.isIPv6)(h)`,
 * _tls_wrap's `net.isIP(servername)`), so replacing them there is enough. Done once; returns
 * node:net.
 */
function colonFirstIpChecks() {
  if (colonFirstNet) return colonFirstNet;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- node:net's own exports object is what is changed
  const net = require('node:net');
  const { isIPv4, isIPv6 } = net;
  // `${s}`: the same conversion (and the same TypeError for a Symbol) as Node's RegExp test.
  const v6 = (s) => `${s}`.includes(':') && isIPv6(s);
  net.isIPv6 = v6;
  net.isIP = (s) => (isIPv4(s) ? 4 : v6(s) ? 6 : 0);
  colonFirstNet = net;
  return net;
}

/** The grpc-js and proto-loader modules, each loaded when first read. */
function grpcModules() {
  return {
    get grpc() {
      colonFirstIpChecks();
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy by design, see above
      return require('@grpc/grpc-js');
    },
    get protoLoader() {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy by design, see above
      return require('@grpc/proto-loader');
    },
  };
}

module.exports = { grpcModules, colonFirstIpChecks };
