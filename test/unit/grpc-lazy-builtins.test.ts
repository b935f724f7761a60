// The bundles carry grpc-js with node:zlib and node:dns loaded on first use
// (scripts/grpc-lazy-builtins.mjs): loading the bundled grpc-js loads neither, a compressed
// message still goes both ways (through a channel's compression filter and a server's
// interceptors), a channel still resolves a name, and the patch refuses a grpc-js text it was not
// written for.
import type * as GrpcJs from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';
import { bundleDir, loadBundled, probeInFreshNode } from '../helpers/bundle.js';

interface Patch {
  lazyBuiltinsSource(source: string, file: string): string;
  GRPC_LAZY_USERS: RegExp;
}

const require = createRequire(import.meta.url);
const srcDir = dirname(require.resolve('@grpc/grpc-js/build/src/compression-filter.js'));
/** Each patched file, the eager require it had, the getter it gets, and a use the patch does not know. */
const FILES = [
  { file: 'compression-filter.js', eager: 'const zlib = require("zlib");', getter: 'lazyZlib()', stray: 'zlib.inflateSync(Buffer.alloc(0));' },
  { file: 'server-interceptors.js', eager: 'const zlib = require("zlib");', getter: 'lazyZlib()', stray: 'zlib.inflateSync(Buffer.alloc(0));' },
  { file: 'resolver-dns.js', eager: 'const dns_1 = require("dns");', getter: 'lazyDns()', stray: 'dns_1.lookup("x", () => {});' },
];
let patch: Patch;
let dir: string;

beforeAll(async () => {
  patch = (await import(pathToFileURL(join(repoRoot(), 'scripts', 'grpc-lazy-builtins.mjs')).href)) as Patch;
  dir = mkdtempSync(join(tmpdir(), 'gaxx-grpc-lazy-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('grpc-js with zlib and dns loaded on first use (the bundles)', () => {
  it('patches the files of the installed grpc-js that load zlib or dns, and refuses another text', () => {
    for (const f of FILES) {
      const path = join(srcDir, f.file);
      expect(patch.GRPC_LAZY_USERS.test(path)).toBe(true);
      const original = readFileSync(path, 'utf8');
      expect(original).toContain(f.eager);
      const patched = patch.lazyBuiltinsSource(original, path);
      expect(patched).toContain(f.getter);
      expect(patched).not.toContain(f.eager);
      // One use of the module the patch does not know: the build fails rather than keep it eager.
      expect(() => patch.lazyBuiltinsSource(`${original}\n${f.stray}\n`, path)).toThrow(/left unpatched/);
      expect(() => patch.lazyBuiltinsSource(original.replace(f.eager, f.eager.replace('require("', 'require("node:')), path)).toThrow(
        /not the one scripts\/grpc-lazy-builtins.mjs patches/,
      );
    }
  });

  it('the bundled grpc-js loads neither zlib nor dns', () => {
    const out = probeInFreshNode(
      dir,
      `const grpc = require(${JSON.stringify(join(bundleDir, 'vendor-load.cjs'))}).loadVendor('vendor-grpc-js.cjs');
process.stdout.write(JSON.stringify({ client: typeof grpc.Client, zlib: loaded('zlib'), dns: loaded('dns') }));`,
    );
    expect(out).toEqual({ client: 'function', zlib: false, dns: false });
  });

  it('a gzip-compressed message goes both ways through the bundled grpc-js, to an address and to a name it resolves', async () => {
    const grpc = loadBundled<typeof GrpcJs>('vendor-grpc-js.cjs');
    const same = (b: Buffer) => b;
    const service = {
      Echo: {
        path: '/gaxx.test.Echo/Echo',
        requestStream: false,
        responseStream: false,
        requestSerialize: same,
        requestDeserialize: same,
        responseSerialize: same,
        responseDeserialize: same,
      },
    };
    const server = new grpc.Server({ 'grpc.default_compression_algorithm': 2, 'grpc.default_compression_level': 2 });
    server.addService(service, { Echo: (call: GrpcJs.ServerUnaryCall<Buffer, Buffer>, done: GrpcJs.sendUnaryData<Buffer>) => done(null, call.request) });
    // insecure-ok: loopback only, for the compression path (TLS is not what is under test)
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const Client = grpc.makeGenericClientConstructor(service, 'Echo');
    try {
      // `localhost` goes through grpc-js's DNS resolver, and so through its lazily loaded dns.
      for (const target of [`ipv4:127.0.0.1:${port}`, `localhost:${port}`]) {
        // insecure-ok: loopback only, as above
        const client = new Client(target, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 }) as unknown as {
          Echo(req: Buffer, cb: (e: Error | null, r?: Buffer) => void): void;
          close(): void;
        };
        try {
          const message = Buffer.from('gaxx '.repeat(1000));
          const reply = await new Promise<Buffer>((resolve, reject) => client.Echo(message, (e, r) => (e ? reject(e) : resolve(r as Buffer))));
          expect({ target, same: reply.equals(message) }).toEqual({ target, same: true });
        } finally {
          client.close();
        }
      }
    } finally {
      server.forceShutdown();
    }
  });
});
