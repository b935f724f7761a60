// An esbuild plugin for the bundles (scripts/bundle.mjs): protobufjs generates each of a message
// type's functions when it is first called, instead of all five at once.
//
// The first time a type encodes, decodes, converts or verifies anything, protobufjs's Type#setup
// generates its encode, decode, verify, fromObject and toObject: source text put together and
// compiled with `new Function`, which no code cache holds, so every process pays for it again.
// A process calls two of them per type: a client converts and encodes its requests
// (fromObject, encode) and decodes and converts its responses (decode, toObject), a server the
// other way round, and nothing of gaxx verifies. Here setup gives the type a stub for each,
// which generates the very function setup would have made on its first call and keeps it.
// (A client's first Exec request encoded and three events decoded, in a fresh process: 3.9 ms
// before, 2.6 ms after, mean of 20 alternated.)
//
// The patch replaces setup by its text and fails the build when that text is not exactly the one
// written here (another protobufjs version): see exact-edits.mjs.
import { applyExactEdits, editPlugin } from './exact-edits.mjs';

/** The file patched, as esbuild resolves it. */
export const PROTOBUF_TYPE = /[\\/]protobufjs[\\/]src[\\/]type\.js$/;

/** [original, replacement] of protobufjs 7's src/type.js. */
const EDITS = [
  [
    `    // Replace setup methods with type-specific generated functions
    this.encode = encoder(this)({
        Writer : Writer,
        types  : types,
        util   : util
    });
    this.decode = decoder(this)({
        Reader : Reader,
        types  : types,
        util   : util
    });
    this.verify = verifier(this)({
        types : types,
        util  : util
    });
    this.fromObject = converter.fromObject(this)({
        types : types,
        util  : util
    });
    this.toObject = converter.toObject(this)({
        types : types,
        util  : util
    });
`,
    `    // gaxx (scripts/protobuf-lazy-setup.mjs): each function generated on its first call.
    var self = this;
    function lazy(name, make) {
        var made;
        var stub = function () {
            if (!made) {
                made = make();
                // Kept in the stub's place (unless a wrapper below took that place: it calls the stub).
                if (self[name] === stub) self[name] = made;
            }
            return made.apply(this, arguments);
        };
        self[name] = stub;
    }
    lazy("encode", function () {
        return encoder(self)({
            Writer : Writer,
            types  : types,
            util   : util
        });
    });
    lazy("decode", function () {
        return decoder(self)({
            Reader : Reader,
            types  : types,
            util   : util
        });
    });
    lazy("verify", function () {
        return verifier(self)({
            types : types,
            util  : util
        });
    });
    lazy("fromObject", function () {
        return converter.fromObject(self)({
            types : types,
            util  : util
        });
    });
    lazy("toObject", function () {
        return converter.toObject(self)({
            types : types,
            util  : util
        });
    });
`,
  ],
];

/** src/type.js of protobufjs with setup generating each function on first call. */
export function lazySetupSource(source, file = 'type.js') {
  return applyExactEdits(source, EDITS, { file, patch: 'scripts/protobuf-lazy-setup.mjs', what: 'protobufjs' });
}

export const protobufLazySetup = editPlugin('protobuf-lazy-setup', PROTOBUF_TYPE, lazySetupSource);
