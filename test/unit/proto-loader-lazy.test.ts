// The bundles carry proto-loader with its descriptors made on first read (scripts/proto-loader-lazy.mjs):
// the package definitions they build must equal, field by field and byte by byte, those of the
// proto-loader package itself, and the patch must refuse a proto-loader text it was not written for.
import * as protoLoader from '@grpc/proto-loader';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_PROTO, HEALTH_PROTO } from '../../proto/gen/descriptors.js';
import { LOADER_OPTIONS } from '../../proto/index.js';
import { repoRoot } from '../helpers/agent.js';
import { bundleDir, loadBundled } from '../helpers/bundle.js';

type Loader = typeof protoLoader;
type Definition = Record<string, unknown>;
interface Patch {
  lazyProtoLoaderSource(source: string, file?: string): string;
  PROTO_LOADER_INDEX: RegExp;
}

const root = repoRoot();
const require = createRequire(import.meta.url);
const indexFile = require.resolve('@grpc/proto-loader');
const vendorFile = join(bundleDir, 'vendor-proto-loader.cjs');
let patch: Patch;
let bundled: Loader;

beforeAll(async () => {
  patch = (await import(pathToFileURL(join(root, 'scripts', 'proto-loader-lazy.mjs')).href)) as Patch;
  // `npm test` builds the bundle first.
  expect(existsSync(vendorFile), `${vendorFile} missing: run npm run build`).toBe(true);
  bundled = loadBundled<Loader>('vendor-proto-loader.cjs');
});

/** Every definition of a package, with its methods' request and response types, each as [path, object]. */
function definitions(pkg: protoLoader.PackageDefinition): Array<[string, Definition]> {
  const out: Array<[string, Definition]> = [];
  for (const [name, def] of Object.entries(pkg)) {
    const d = def as Definition;
    if ('format' in d) out.push([name, d]);
    else
      for (const [m, method] of Object.entries(d as Record<string, Definition>)) {
        out.push([`${name}.${m}.requestType`, method.requestType as Definition]);
        out.push([`${name}.${m}.responseType`, method.responseType as Definition]);
      }
  }
  return out;
}

describe('proto-loader with lazy descriptors (the bundles)', () => {
  it('is what the bundle carries, and patches the installed proto-loader', () => {
    expect(patch.PROTO_LOADER_INDEX.test(indexFile)).toBe(true);
    const patched = patch.lazyProtoLoaderSource(readFileSync(indexFile, 'utf8'));
    expect(patched).toContain('descriptorExt()');
    expect(readFileSync(vendorFile, 'utf8')).toContain('descriptorExt()');
  });

  it('builds the definitions proto-loader builds, computing descriptors only when read', () => {
    for (const json of [AGENT_PROTO, HEALTH_PROTO]) {
      const mine = bundled.fromJSON(structuredClone(json) as never, LOADER_OPTIONS);
      const theirs = protoLoader.fromJSON(structuredClone(json) as never, LOADER_OPTIONS);
      const defs = definitions(mine);
      expect(defs.length).toBeGreaterThan(json === AGENT_PROTO ? 20 : 3);
      for (const [path, def] of defs) {
        // Nothing read yet: both are getters.
        expect(typeof Object.getOwnPropertyDescriptor(def, 'type')?.get, path).toBe('function');
        expect(typeof Object.getOwnPropertyDescriptor(def, 'fileDescriptorProtos')?.get, path).toBe('function');
      }
      const theirsByPath = new Map(definitions(theirs));
      expect([...theirsByPath.keys()].sort()).toEqual(defs.map(([p]) => p).sort());
      for (const [path, def] of defs) {
        const other = theirsByPath.get(path) as Definition;
        expect(Object.keys(def), path).toEqual(Object.keys(other));
        expect(def.format, path).toBe(other.format);
        expect(def.type, path).toEqual(other.type);
        expect(def.fileDescriptorProtos, path).toEqual(other.fileDescriptorProtos);
        // Read once, kept: a plain value from then on, the same list for the whole package.
        expect(Object.getOwnPropertyDescriptor(def, 'type')?.get, path).toBeUndefined();
        expect(def.fileDescriptorProtos).toBe(defs[0]?.[1].fileDescriptorProtos);
      }
    }
  });

  it('serializes and deserializes as proto-loader does', () => {
    const exec = (pkg: protoLoader.PackageDefinition) =>
      (pkg['gaxx.agent.v1.Agent'] as Record<string, protoLoader.MethodDefinition<object, object>>).Exec as protoLoader.MethodDefinition<object, object>;
    const mine = exec(bundled.fromJSON(structuredClone(AGENT_PROTO) as never, LOADER_OPTIONS));
    const theirs = exec(protoLoader.fromJSON(structuredClone(AGENT_PROTO) as never, LOADER_OPTIONS));
    const req = { taskId: 't1', argv: ['sh', '-c', 'echo hi'], env: { A: '1' }, timeoutMs: 5000, stdin: Buffer.from('x') };
    const bytes = mine.requestSerialize(req);
    expect(bytes.length).toBeGreaterThan(10);
    expect(bytes).toEqual(theirs.requestSerialize(req));
    expect(mine.requestDeserialize(bytes)).toEqual(theirs.requestDeserialize(bytes));
  });

  it('refuses a proto-loader text it was not written for, saying so', () => {
    const source = readFileSync(indexFile, 'utf8');
    const changed = source.replace("const messageDescriptor = message.toDescriptor('proto3');", "const messageDescriptor = message.toDescriptor('proto2');");
    expect(changed).not.toBe(source);
    expect(() => patch.lazyProtoLoaderSource(changed, 'index.js')).toThrow(/not the one scripts\/proto-loader-lazy\.mjs patches \(missing/);
    const twice = `${source}\nconst decodedDescriptorSet = descriptor.FileDescriptorSet.decode(descriptorSet);\n`;
    expect(() => patch.lazyProtoLoaderSource(twice)).toThrow(/found twice/);
  });
});
