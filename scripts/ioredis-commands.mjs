// An esbuild plugin for the bundles (scripts/bundle.mjs): ioredis's command methods defined
// without the ~25 ms their definition took in every process that loads ioredis (`gaxx run`, the
// scheduler daemon).
//
// ioredis's utils/Commander.js puts two methods per Redis command (about 290 commands) on
// Commander.prototype, one assignment at a time. V8 keeps a prototype's properties in fast mode,
// and each of those ~580 assignments to a fast-mode prototype costs it a new layout: 25-40 ms
// here in all, measured, for what is a plain loop. Put in dictionary mode first (adding two
// properties and deleting the first does that), the prototype takes the same assignments in under
// 1 ms, and V8 makes it fast again, all at once, when instances first use it. Nothing else
// changes: the same methods, made by the same function, on the same object; the two helper
// properties are gone before any method is defined.
//
// Made only where the text is exactly ioredis 5's (exact-edits.mjs).
import { applyExactEdits, editPlugin } from './exact-edits.mjs';

/** The file patched, as esbuild resolves it. */
export const IOREDIS_COMMANDER = /[\\/]ioredis[\\/]built[\\/]utils[\\/]Commander\.js$/;

const LOOP = `commands.forEach(function (commandName) {
    Commander.prototype[commandName] = generateFunction(commandName, commandName, "utf8");
    Commander.prototype[commandName + "Buffer"] = generateFunction(commandName + "Buffer", commandName, null);
});`;

const EDITS = [
  [
    LOOP,
    `// gaxx (scripts/ioredis-commands.mjs): the prototype in dictionary mode while ~580 methods are added.
Commander.prototype.__gaxxDictionaryA = 0;
Commander.prototype.__gaxxDictionaryB = 0;
delete Commander.prototype.__gaxxDictionaryA;
delete Commander.prototype.__gaxxDictionaryB;
${LOOP}`,
  ],
];

/** ioredis's Commander.js with the edit made; throws when the original is not there exactly once. */
export function ioredisCommandsSource(source, file = 'Commander.js') {
  return applyExactEdits(source, EDITS, { file, patch: 'scripts/ioredis-commands.mjs', what: 'ioredis' });
}

/** The plugin: ioredis's Commander.js as ioredisCommandsSource makes it. */
export const ioredisCommands = editPlugin('ioredis-commands', IOREDIS_COMMANDER, ioredisCommandsSource);
