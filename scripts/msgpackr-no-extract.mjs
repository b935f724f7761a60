// An esbuild plugin for the bundles (scripts/bundle.mjs): msgpackr without its native string
// extractor (msgpackr-extract), so that loading BullMQ probes for no native addon.
//
// BullMQ packs the arguments of its Lua scripts with msgpackr, and msgpackr's Node entry tries
// require('msgpackr-extract') as it loads. Bundled, that require ran msgpackr-extract's loader:
// detect-libc read the ELF header of /proc/self/exe, and node-gyp-build-optional-packages looked
// for build/Release, build/Debug and prebuilds beside the bundle and for
// @msgpackr-extract/msgpackr-extract-linux-x64 up the node_modules chain (a failed open or stat
// each), about 1.5 ms of every `gaxx run` and of a daemon's start here. The extractor only speeds
// up unpacking strings, and BullMQ only packs: resolved here to a module that exports null,
// msgpackr takes its own JavaScript path, as it does wherever the addon is not installed. Packing
// is the same code with or without it.

/** The request resolved to nothing. */
export const LEFT_OUT = /^msgpackr-extract$/;

/** The module's text: null, which msgpackr reads as "no extractor". */
export const NO_EXTRACTOR = `// gaxx (scripts/msgpackr-no-extract.mjs): msgpackr's native string extractor is left out.
module.exports = null;
`;

/** The plugin: `msgpackr-extract` resolves to NO_EXTRACTOR. */
export const msgpackrNoExtract = {
  name: 'msgpackr-no-extract',
  setup(b) {
    b.onResolve({ filter: LEFT_OUT }, (a) => ({ path: a.path, namespace: 'msgpackr-no-extract' }));
    b.onLoad({ filter: /.*/, namespace: 'msgpackr-no-extract' }, () => ({ contents: NO_EXTRACTOR, loader: 'js' }));
  },
};
