// An esbuild plugin for the bundles (scripts/bundle.mjs): @grpc/proto-loader's package definitions
// with their descriptors made on first read instead of up front.
//
// For every service, message and enum a package definition holds, proto-loader computes its
// descriptor (`type`: a DescriptorProto as a plain object) and the encoded FileDescriptorProtos
// of the whole root (`fileDescriptorProtos`). Only reflection-like tools read either; grpc-js
// reads neither (it calls the serializers and reads the method paths and stream flags). Making
// them costs a process that loads the services ~10 ms: protobufjs's descriptor extension is
// loaded and builds its types, and the encoders of those types are generated (`new Function`,
// which no code cache holds). Here both are getters that compute the very same values when
// first read (then keep them), and the descriptor extension is loaded on first use.
//
// The patch replaces whole functions of proto-loader's build/src/index.js by their text, and
// fails the build when that text is not exactly the one written here (another proto-loader
// version): a changed function must be looked at again, never patched blindly (exact-edits.mjs).
import { applyExactEdits, editPlugin } from './exact-edits.mjs';

/** The file patched, as esbuild resolves it. */
export const PROTO_LOADER_INDEX = /[\\/]@grpc[\\/]proto-loader[\\/]build[\\/]src[\\/]index\.js$/;

/** [original, replacement] pairs of proto-loader 0.8's build/src/index.js. */
const EDITS = [
  [
    'const descriptor = require("protobufjs/ext/descriptor");\n',
    `// gaxx (scripts/proto-loader-lazy.mjs): protobufjs's descriptor extension, loaded on first use.
let descriptorExtension;
const descriptorExt = () => (descriptorExtension ??= require("protobufjs/ext/descriptor"));
/** Defines \`name\` on \`obj\` as a getter of make(), run on the first read and kept (enumerable, as a value would be). */
function lazyField(obj, name, make) {
    Object.defineProperty(obj, name, {
        configurable: true,
        enumerable: true,
        get() {
            const value = make();
            Object.defineProperty(obj, name, { value, configurable: true, enumerable: true, writable: true });
            return value;
        },
        set(value) {
            Object.defineProperty(obj, name, { value, configurable: true, enumerable: true, writable: true });
        },
    });
    return obj;
}
/** The reflection object's descriptor as a plain object, as proto-loader gives it. */
function descriptorObject(reflected) {
    descriptorExt();
    const d = reflected.toDescriptor('proto3');
    return d.$type.toObject(d, descriptorOptions);
}
`,
  ],
  [
    `function createMessageDefinition(message, options, fileDescriptors) {
    const messageDescriptor = message.toDescriptor('proto3');
    return {
        format: 'Protocol Buffer 3 DescriptorProto',
        type: messageDescriptor.$type.toObject(messageDescriptor, descriptorOptions),
        fileDescriptorProtos: fileDescriptors,
        serialize: createSerializer(message),
        deserialize: createDeserializer(message, options)
    };
}`,
    `function createMessageDefinition(message, options, fileDescriptors) {
    const def = { format: 'Protocol Buffer 3 DescriptorProto' };
    lazyField(def, 'type', () => descriptorObject(message));
    lazyField(def, 'fileDescriptorProtos', fileDescriptors);
    def.serialize = createSerializer(message);
    def.deserialize = createDeserializer(message, options);
    return def;
}`,
  ],
  [
    `function createEnumDefinition(enumType, fileDescriptors) {
    const enumDescriptor = enumType.toDescriptor('proto3');
    return {
        format: 'Protocol Buffer 3 EnumDescriptorProto',
        type: enumDescriptor.$type.toObject(enumDescriptor, descriptorOptions),
        fileDescriptorProtos: fileDescriptors,
    };
}`,
    `function createEnumDefinition(enumType, fileDescriptors) {
    const def = { format: 'Protocol Buffer 3 EnumDescriptorProto' };
    lazyField(def, 'type', () => descriptorObject(enumType));
    lazyField(def, 'fileDescriptorProtos', fileDescriptors);
    return def;
}`,
  ],
  [
    `    const descriptorList = root.toDescriptor('proto3').file;
    const bufferList = descriptorList.map(value => Buffer.from(descriptor.FileDescriptorProto.encode(value).finish()));
    for (const [name, obj] of getAllHandledReflectionObjects(root, '')) {
        def[name] = createDefinition(obj, name, options, bufferList);
    }`,
    `    // One list for the whole package, made on the first read of any definition's fileDescriptorProtos.
    let bufferList;
    const fileDescriptors = () => {
        if (!bufferList) {
            const { FileDescriptorProto } = descriptorExt();
            bufferList = root.toDescriptor('proto3').file.map(value => Buffer.from(FileDescriptorProto.encode(value).finish()));
        }
        return bufferList;
    };
    for (const [name, obj] of getAllHandledReflectionObjects(root, '')) {
        def[name] = createDefinition(obj, name, options, fileDescriptors);
    }`,
  ],
  [
    'const decodedDescriptorSet = descriptor.FileDescriptorSet.decode(descriptorSet);',
    'const decodedDescriptorSet = descriptorExt().FileDescriptorSet.decode(descriptorSet);',
  ],
  [
    'const decodedDescriptorSet = descriptor.FileDescriptorSet.fromObject(descriptorSet);',
    'const decodedDescriptorSet = descriptorExt().FileDescriptorSet.fromObject(descriptorSet);',
  ],
];

/** proto-loader's index.js with the edits made; throws when any original is not there exactly once. */
export function lazyProtoLoaderSource(source, file = 'index.js') {
  const out = applyExactEdits(source, EDITS, { file, patch: 'scripts/proto-loader-lazy.mjs', what: 'proto-loader' });
  // Every use of the eagerly loaded extension is gone.
  if (/\bdescriptor\.File/.test(out)) throw new Error(`${file}: a use of proto-loader's descriptor extension is left unpatched`);
  return out;
}

/** The plugin: proto-loader's index.js as lazyProtoLoaderSource makes it. */
export const lazyProtoLoader = editPlugin('proto-loader-lazy', PROTO_LOADER_INDEX, lazyProtoLoaderSource);
