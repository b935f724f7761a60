'use strict';
/* global require, module, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS file by design, see below */
// Copied into dist/bundle by scripts/bundle.mjs. Loads a vendor file beside it (grpc-js,
// proto-loader) with the V8 code cache that the build made for it (<file>.v8cache): Node 20 has
// no compile cache for modules, and compiling these two files is a good part of the start of
// `gaxx exec` and `gaxx run`. V8 ignores a cache made by another Node version or with other
// flags; the file is then compiled as usual. Modules loaded here land in require.cache, so a
// plain require() of the same file elsewhere gets the same instance.
const Module = require('node:module');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { Script } = require('node:vm');

/** Compiled scripts by file, for the build's cache generation (scripts/bundle.mjs). */
const scripts = new Map();

function loadVendor(name) {
  const file = join(__dirname, name);
  const hit = require.cache[file];
  if (hit) return hit.exports;
  let cachedData;
  try {
    cachedData = readFileSync(`${file}.v8cache`);
  } catch {
    cachedData = undefined;
  }
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  scripts.set(file, script);
  const m = new Module(file, module);
  m.filename = file;
  m.paths = Module._nodeModulePaths(__dirname);
  require.cache[file] = m;
  try {
    script.runInThisContext().call(m.exports, m.exports, Module.createRequire(file), m, file, __dirname);
  } catch (e) {
    delete require.cache[file];
    throw e;
  }
  m.loaded = true;
  return m.exports;
}

module.exports = { loadVendor, scripts };
