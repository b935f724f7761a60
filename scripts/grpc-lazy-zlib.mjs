// An esbuild plugin for the bundles (scripts/bundle.mjs): grpc-js loads node:zlib when a message
// is first compressed or decompressed, not when grpc-js itself is loaded.
//
// grpc-js's compression filter (channels) and server interceptors (servers) require zlib at the
// top of their files, and grpc-js's index loads both, so every process that loads grpc-js paid
// for zlib (about 1.4 ms here), though no gaxx channel or server compresses anything: a `gaxx
// exec` loaded it for nothing (vendor-load.cjs no longer needs it either, where a file is as the
// build left it). Here each use calls a getter that requires zlib on first use, the same module
// Node would have given at load.
//
// Made only where the text is exactly grpc-js 1.14's (exact-edits.mjs).
import { basename } from 'node:path';
import { applyExactEdits, editPlugin } from './exact-edits.mjs';

/** The files patched, as esbuild resolves them. */
export const GRPC_ZLIB_USERS = /[\\/]@grpc[\\/]grpc-js[\\/]build[\\/]src[\\/](compression-filter|server-interceptors)\.js$/;

const LAZY = [
  'const zlib = require("zlib");\n',
  `// gaxx (scripts/grpc-lazy-zlib.mjs): zlib loaded on its first use.
let zlibModule;
const lazyZlib = () => zlibModule !== null && zlibModule !== void 0 ? zlibModule : (zlibModule = require("zlib"));
`,
];

/** [original, replacement] pairs of grpc-js 1.14's files, by file name. */
const EDITS = {
  'compression-filter.js': [
    LAZY,
    ['zlib.deflate(message, (err, output) => {', 'lazyZlib().deflate(message, (err, output) => {'],
    ['const decompresser = zlib.createInflate();', 'const decompresser = lazyZlib().createInflate();'],
    ['zlib.gzip(message, (err, output) => {', 'lazyZlib().gzip(message, (err, output) => {'],
    ['const decompresser = zlib.createGunzip();', 'const decompresser = lazyZlib().createGunzip();'],
  ],
  'server-interceptors.js': [
    LAZY,
    ['decompresser = zlib.createInflate();', 'decompresser = lazyZlib().createInflate();'],
    ['decompresser = zlib.createGunzip();', 'decompresser = lazyZlib().createGunzip();'],
  ],
};

/**
 * grpc-js's `file` (compression-filter.js or server-interceptors.js) with its edits made; throws
 * when an original is not there exactly once, or a use of the eagerly loaded zlib is left.
 */
export function lazyZlibSource(source, file) {
  const edits = EDITS[basename(file)];
  if (!edits) throw new Error(`${file}: not a grpc-js file scripts/grpc-lazy-zlib.mjs patches`);
  const out = applyExactEdits(source, edits, { file, patch: 'scripts/grpc-lazy-zlib.mjs', what: 'grpc-js' });
  if (/(?<![\w.-])zlib\.(?!mjs)/.test(out)) throw new Error(`${file}: a use of grpc-js's eagerly loaded zlib is left unpatched`);
  return out;
}

/** The plugin: those files of grpc-js as lazyZlibSource makes them. */
export const grpcLazyZlib = editPlugin('grpc-lazy-zlib', GRPC_ZLIB_USERS, lazyZlibSource);
