// Text edits of a package's file for the bundles (scripts/bundle.mjs), each made only where the
// text is exactly the one it was written for: another version of the package fails the build,
// naming the patch, so that a changed function is looked at again, never patched blindly. Used by
// scripts/proto-loader-lazy.mjs, scripts/protobuf-lazy-setup.mjs, scripts/ioredis-commands.mjs and
// scripts/grpc-lazy-builtins.mjs.
import { readFileSync } from 'node:fs';

/**
 * `source` with each [original, replacement] pair of `edits` made; throws when an original is
 * not there exactly once. `patch` names the script that owns the edits, `what` the package.
 */
export function applyExactEdits(source, edits, { file, patch, what }) {
  let out = source;
  for (const [from, to] of edits) {
    const at = out.indexOf(from);
    if (at === -1 || out.indexOf(from, at + 1) !== -1) {
      throw new Error(
        `${file}: ${what}'s text is not the one ${patch} patches (${at === -1 ? 'missing' : 'found twice'}: ${JSON.stringify(from.slice(0, 60))}...); review the patch for this version`,
      );
    }
    out = out.slice(0, at) + to + out.slice(at + from.length);
  }
  return out;
}

/** An esbuild plugin that loads the files matching `filter` as `edit(text, path)` returns them. */
export function editPlugin(name, filter, edit) {
  return {
    name,
    setup(b) {
      b.onLoad({ filter }, (a) => ({ contents: edit(readFileSync(a.path, 'utf8'), a.path), loader: 'js' }));
    },
  };
}
