// An esbuild plugin for the bundles (scripts/bundle.mjs): grpc-js loads node:zlib when a message
// is first compressed or decompressed, and node:dns when a name is first resolved, not when
// grpc-js itself is loaded.
//
// grpc-js's compression filter (channels) and server interceptors (servers) require zlib at the
// top of their files, and its DNS resolver requires dns; grpc-js's index loads all three, so every
// process that loads grpc-js paid for both, though no gaxx channel or server compresses anything
// and gaxx dials agents by IP address where it has one (an `ipv4:`/`ipv6:` target, which no DNS
// resolver serves): zlib cost about 1.4 ms, and dns 2 ms (loading node:dns sets up c-ares, which
// reads /etc/resolv.conf and /etc/nsswitch.conf). A `gaxx exec` loaded both for nothing, and so
// did every agent. Here each use calls a getter that requires the module on first use, the same
// module Node would have given at load.
//
// Made only where the text is exactly grpc-js 1.14's (exact-edits.mjs).
import { basename } from 'node:path';
import { applyExactEdits, editPlugin } from './exact-edits.mjs';

/** The files patched, as esbuild resolves them. */
export const GRPC_LAZY_USERS = /[\\/]@grpc[\\/]grpc-js[\\/]build[\\/]src[\\/](compression-filter|server-interceptors|resolver-dns)\.js$/;

/** The edit that replaces `required`'s eager require with `getter`, which loads `module` on first use. */
const lazy = (required, module, getter) => [
  required,
  `// gaxx (scripts/grpc-lazy-builtins.mjs): ${module} loaded on its first use.
let ${module}Module;
const ${getter} = () => ${module}Module !== null && ${module}Module !== void 0 ? ${module}Module : (${module}Module = require("${module}"));
`,
];
const LAZY_ZLIB = lazy('const zlib = require("zlib");\n', 'zlib', 'lazyZlib');
const LAZY_DNS = lazy('const dns_1 = require("dns");\n', 'dns', 'lazyDns');

/** [original, replacement] pairs of grpc-js 1.14's files, by file name, and the eager use none may keep. */
const EDITS = {
  'compression-filter.js': {
    eager: /(?<![\w.-])zlib\.(?!mjs)/,
    edits: [
      LAZY_ZLIB,
      ['zlib.deflate(message, (err, output) => {', 'lazyZlib().deflate(message, (err, output) => {'],
      ['const decompresser = zlib.createInflate();', 'const decompresser = lazyZlib().createInflate();'],
      ['zlib.gzip(message, (err, output) => {', 'lazyZlib().gzip(message, (err, output) => {'],
      ['const decompresser = zlib.createGunzip();', 'const decompresser = lazyZlib().createGunzip();'],
    ],
  },
  'server-interceptors.js': {
    eager: /(?<![\w.-])zlib\.(?!mjs)/,
    edits: [
      LAZY_ZLIB,
      ['decompresser = zlib.createInflate();', 'decompresser = lazyZlib().createInflate();'],
      ['decompresser = zlib.createGunzip();', 'decompresser = lazyZlib().createGunzip();'],
    ],
  },
  'resolver-dns.js': {
    eager: /(?<![\w.-])dns_1\./,
    edits: [
      LAZY_DNS,
      ['this.alternativeResolver = new dns_1.promises.Resolver();', 'this.alternativeResolver = new (lazyDns().promises.Resolver)();'],
      [
        'const addressList = await dns_1.promises.lookup(hostname, { all: true });',
        'const addressList = await lazyDns().promises.lookup(hostname, { all: true });',
      ],
      ['return dns_1.promises.resolveTxt(hostname);', 'return lazyDns().promises.resolveTxt(hostname);'],
    ],
  },
};

/**
 * grpc-js's `file` (one GRPC_LAZY_USERS names) with its edits made; throws when an original is
 * not there exactly once, or a use of the eagerly loaded module is left.
 */
export function lazyBuiltinsSource(source, file) {
  const patch = EDITS[basename(file)];
  if (!patch) throw new Error(`${file}: not a grpc-js file scripts/grpc-lazy-builtins.mjs patches`);
  const out = applyExactEdits(source, patch.edits, { file, patch: 'scripts/grpc-lazy-builtins.mjs', what: 'grpc-js' });
  if (patch.eager.test(out)) throw new Error(`${file}: a use of grpc-js's eagerly loaded module is left unpatched`);
  return out;
}

/** The plugin: those files of grpc-js as lazyBuiltinsSource makes them. */
export const grpcLazyBuiltins = editPlugin('grpc-lazy-builtins', GRPC_LAZY_USERS, lazyBuiltinsSource);
