// The bundles carry grpc-js with node:zlib loaded on first use (scripts/grpc-lazy-zlib.mjs):
// loading the bundled grpc-js loads no zlib, a compressed message still goes both ways (through a
// channel's compression filter and a server's interceptors), and the patch refuses a grpc-js text
// it was not written for.
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
  lazyZlibSource(source: string, file: string): string;
  GRPC_ZLIB_USERS: RegExp;
}

const require = createRequire(import.meta.url);
const srcDir = dirname(require.resolve('@grpc/grpc-js/build/src/compression-filter.js'));
const FILES = ['compression-filter.js', 'server-interceptors.js'];
let patch: Patch;
let dir: string;

beforeAll(async () => {
  patch = (await import(pathToFileURL(join(repoRoot(), 'scripts', 'grpc-lazy-zlib.mjs')).href)) as Patch;
  dir = mkdtempSync(join(tmpdir(), 'gaxx-grpc-zlib-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('grpc-js with zlib loaded on first use (the bundles)', () => {
  it('patches both files of the installed grpc-js that load zlib, and refuses another text', () => {
    for (const f of FILES) {
      const path = join(srcDir, f);
      expect(patch.GRPC_ZLIB_USERS.test(path)).toBe(true);
      const original = readFileSync(path, 'utf8');
      expect(original).toContain('const zlib = require("zlib");');
      const patched = patch.lazyZlibSource(original, path);
      expect(patched).toContain('lazyZlib()');
      expect(patched).not.toContain('const zlib = require("zlib");');
      // One use of zlib the patch does not know: the build fails rather than keep it eager.
      expect(() => patch.lazyZlibSource(`${original}\nzlib.inflateSync(Buffer.alloc(0));\n`, path)).toThrow(/left unpatched/);
      expect(() => patch.lazyZlibSource(original.replace('const zlib = require("zlib");', 'const zlib = require("node:zlib");'), path)).toThrow(
        /not the one scripts\/grpc-lazy-zlib.mjs patches/,
      );
    }
  });

  it('the bundled grpc-js loads no zlib', () => {
    const out = probeInFreshNode(
      dir,
      `const grpc = require(${JSON.stringify(join(bundleDir, 'vendor-load.cjs'))}).loadVendor('vendor-grpc-js.cjs');
process.stdout.write(JSON.stringify({ client: typeof grpc.Client, zlib: loaded('zlib') }));`,
    );
    expect(out).toEqual({ client: 'function', zlib: false });
  });

  it('a gzip-compressed message goes both ways through the bundled grpc-js', async () => {
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
    // insecure-ok: loopback only, as above
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 }) as unknown as {
      Echo(req: Buffer, cb: (e: Error | null, r?: Buffer) => void): void;
      close(): void;
    };
    try {
      const message = Buffer.from('gaxx '.repeat(1000));
      const reply = await new Promise<Buffer>((resolve, reject) => client.Echo(message, (e, r) => (e ? reject(e) : resolve(r as Buffer))));
      expect(reply.equals(message)).toBe(true);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
