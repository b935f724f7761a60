// The bundles carry protobufjs with each function of a message type generated on its first call
// (scripts/protobuf-lazy-setup.mjs): the bytes and objects must be those of the protobufjs
// package itself, for every method of the agent's service both ways; a client's call generates
// only what it uses; and the patch must refuse a protobufjs text it was not written for.
import * as protoLoader from '@grpc/proto-loader';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_PROTO } from '../../proto/gen/descriptors.js';
import { LOADER_OPTIONS } from '../../proto/index.js';
import { repoRoot } from '../helpers/agent.js';
import { bundleDir, loadBundled } from '../helpers/bundle.js';

type Loader = typeof protoLoader;
type Method = protoLoader.MethodDefinition<object, object>;
interface Patch {
  lazySetupSource(source: string, file?: string): string;
  PROTOBUF_TYPE: RegExp;
}

const require = createRequire(import.meta.url);
const typeFile = join(require.resolve('protobufjs/package.json').replace(/package\.json$/, ''), 'src', 'type.js');
const vendorFile = join(bundleDir, 'vendor-proto-loader.cjs');
let patch: Patch;
let bundled: Loader;

beforeAll(async () => {
  patch = (await import(pathToFileURL(join(repoRoot(), 'scripts', 'protobuf-lazy-setup.mjs')).href)) as Patch;
  // `npm test` builds the bundle first.
  expect(existsSync(vendorFile), `${vendorFile} missing: run npm run build`).toBe(true);
  bundled = loadBundled<Loader>('vendor-proto-loader.cjs');
});

const agentMethods = (loader: Loader): Record<string, Method> =>
  loader.fromJSON(structuredClone(AGENT_PROTO) as never, LOADER_OPTIONS)['gaxx.agent.v1.Agent'] as unknown as Record<string, Method>;

/** Messages of each kind the agent's methods carry, with nested messages, repeated and map fields, bytes and enums. */
const SAMPLES: Record<string, object[]> = {
  Exec: [
    { taskId: 't1', argv: ['sh', '-c', 'echo hi'], env: { A: '1', B: 'two' }, timeoutMs: 5000, stdin: Buffer.from('x\0y'), outputCapBytes: 1024 },
    {
      taskId: 'run-1-t2',
      argv: ['true'],
      signed: {
        runId: 'run-1',
        taskId: 't2',
        target: { host: '10.0.0.5:8088' },
        expiresAtUnixMs: 1_800_000_000_000,
        maxRounds: 3,
        signature: Buffer.from([1, 2, 3]),
        signerCertPem: 'PEM',
        signedAtUnixMs: 1_799_000_000_000,
      },
    },
    {},
  ],
};

describe('protobufjs with each function generated on first call (the bundles)', () => {
  it('is what the bundle carries, and patches the installed protobufjs', () => {
    expect(patch.PROTOBUF_TYPE.test(typeFile)).toBe(true);
    expect(patch.lazySetupSource(readFileSync(typeFile, 'utf8'))).toContain('lazy("verify"');
    expect(readFileSync(vendorFile, 'utf8')).toContain('lazy("verify"');
  });

  it('serializes and deserializes every method’s messages as protobufjs does, both ways', () => {
    const mine = agentMethods(bundled);
    const theirs = agentMethods(protoLoader);
    expect(Object.keys(mine).sort()).toEqual(Object.keys(theirs).sort());
    expect(Object.keys(mine).length).toBeGreaterThan(5);
    const exec = theirs.Exec as Method;
    // An Exec's events, made by the package itself from objects, as an agent sends them.
    const events = [
      { started: { pid: 42, attached: true } },
      { stdout: Buffer.from('out\n') },
      { exit: { code: 3, signal: 'SIGTERM', durationMs: 12, truncated: true, stdoutBytes: 4, stderrBytes: 0, reason: 'exit', error: 'e' } },
    ].map((e) => exec.responseSerialize(e));
    for (const [name, method] of Object.entries(mine)) {
      const other = theirs[name] as Method;
      for (const msg of SAMPLES[name] ?? [{}]) {
        const bytes = method.requestSerialize(msg);
        expect(bytes, name).toEqual(other.requestSerialize(msg));
        expect(method.requestDeserialize(bytes), name).toEqual(other.requestDeserialize(bytes));
      }
      const responses = name === 'Exec' ? events : [other.responseSerialize({})];
      for (const bytes of responses) {
        const decoded = method.responseDeserialize(bytes);
        expect(decoded, name).toEqual(other.responseDeserialize(bytes));
        // Re-encoded with its defaults filled in (LOADER_OPTIONS), as the package does.
        expect(method.responseSerialize(decoded), name).toEqual(other.responseSerialize(decoded));
      }
    }
    expect(events.every((b) => b.length > 4)).toBe(true);
  });

  it('generates only what a call uses: a request’s conversion and encoding, nothing verified', () => {
    const compiled = (run: () => void): number => {
      const original = globalThis.Function;
      let n = 0;
      // protobufjs compiles each generated function with Function(...).
      globalThis.Function = new Proxy(original, {
        apply: (target, self, args: string[]) => (n++, Reflect.apply(target, self, args)),
        construct: (target, args: string[]) => (n++, Reflect.construct(target, args)),
      });
      try {
        run();
      } finally {
        globalThis.Function = original;
      }
      return n;
    };
    const req = SAMPLES.Exec?.[0] as object;
    const mine = agentMethods(bundled).Exec as Method;
    const theirs = agentMethods(protoLoader).Exec as Method;
    const generated = [compiled(() => mine.requestSerialize(req)), compiled(() => theirs.requestSerialize(req))];
    // ExecRequest's fromObject and encode (its nested types untouched: this request has none);
    // the package makes all five of ExecRequest's, and more.
    expect(generated[0]).toBe(2);
    expect(generated[1]).toBeGreaterThanOrEqual(5);
    // Generated once: the next call compiles nothing.
    expect(compiled(() => mine.requestSerialize(req))).toBe(0);
  });

  it('refuses a protobufjs text it was not written for, saying so', () => {
    const source = readFileSync(typeFile, 'utf8');
    const changed = source.replace('this.verify = verifier(this)({', 'this.verify = verifier(this, true)({');
    expect(changed).not.toBe(source);
    expect(() => patch.lazySetupSource(changed, 'type.js')).toThrow(/not the one scripts\/protobuf-lazy-setup\.mjs patches \(missing/);
  });
});
