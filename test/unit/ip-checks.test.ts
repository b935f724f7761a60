// proto/grpc-modules.cjs makes node:net's isIP and isIPv6 look for a colon before Node's IPv6
// pattern runs (V8 compiles that pattern on first use, whatever the text). The answers must stay
// Node's own: checked in a fresh process, Node's functions against the replaced ones, over known
// addresses and many random strings of the characters addresses are made of.
import { spawnSync } from 'node:child_process';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { colonFirstIpChecks } from '../../proto/grpc-modules.cjs';
import { nodeNet } from '../../proto/net-builtin.js';
import { formatHostPort, parseHostPort } from '../../proto/index.js';
import { grpcTarget } from '../../scheduler/client/agent-identity.js';
import { repoRoot } from '../helpers/agent.js';

const KNOWN: [string, number][] = [
  ['127.0.0.2', 4],
  ['0.0.0.0', 4],
  ['::1', 6],
  ['::', 6],
  ['fe80::1%eth0', 6],
  ['::ffff:1.2.3.4', 6],
  ['1:2:3:4:5:6:7:8', 6],
  ['2001:db8::', 6],
  ['gaxx-agent', 0],
  ['h1.internal', 0],
  ['', 0],
  ['1.2.3', 0],
  ['256.1.1.1', 0],
  [':', 0],
  [':::', 0],
  ['a:b', 0],
  ['1:2:3:4:5:6:7:8:9', 0],
  ['[::1]', 0],
];

/** Runs in a fresh node: Node's answers, then the replaced functions' answers, for the same inputs. */
const CHILD = `
const net = require('node:net');
const { isIP, isIPv6 } = net;
const inputs = JSON.parse(process.argv[1]);
let seed = 7;
const rnd = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
const alphabet = '0123456789abcdefABCDEF:.%-x';
for (let i = 0; i < 20000; i++) {
  let s = '';
  for (let j = rnd(24); j > 0; j--) s += alphabet[rnd(alphabet.length)];
  inputs.push(s);
}
const odd = [undefined, null, 123, 1.5, {}, ['::1'], { toString: () => '::1' }];
const before = [...inputs, ...odd].map((s) => [isIP(s), isIPv6(s)]);
require(${JSON.stringify(join(repoRoot(), 'proto', 'grpc-modules.cjs'))}).colonFirstIpChecks();
if (net.isIP === isIP || net.isIPv6 === isIPv6) throw new Error('node:net was not changed');
const after = [...inputs, ...odd].map((s) => [net.isIP(s), net.isIPv6(s)]);
let symbol = 'no error';
try { net.isIPv6(Symbol('x')); } catch (e) { symbol = e.constructor.name; }
process.stdout.write(JSON.stringify({ before, after, symbol, v6: before.filter(([v]) => v === 6).length }));
`;

describe('colon-first IP checks', () => {
  it("gives Node's own answers for known addresses, random strings and values that are not strings", () => {
    const r = spawnSync(process.execPath, ['-e', CHILD, JSON.stringify(KNOWN.map(([s]) => s))], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const { before, after, symbol, v6 } = JSON.parse(r.stdout) as { before: number[][]; after: number[][]; symbol: string; v6: number };
    expect(after).toEqual(before);
    // The known part as written above, so the comparison covers both answers.
    expect(before.slice(0, KNOWN.length).map(([v]) => v)).toEqual(KNOWN.map(([, v]) => v));
    // The random strings reach IPv6 addresses too, not only text without a colon.
    expect(v6).toBeGreaterThan(KNOWN.filter(([, v]) => v === 6).length);
    expect(symbol).toBe('TypeError');
  });

  it('leaves the answers of the address parser as they were once gaxx has loaded node:net', () => {
    nodeNet();
    colonFirstIpChecks();
    for (const [s, v] of KNOWN) expect(isIP(s), s).toBe(v);
    expect(parseHostPort('[fe80::1%eth0]:8088')).toEqual({ host: 'fe80::1%eth0', port: 8088 });
    expect(parseHostPort('h1.internal', { defaultPort: 8088 })).toEqual({ host: 'h1.internal', port: 8088 });
    expect(formatHostPort('::1', 8088)).toBe('[::1]:8088');
    expect(formatHostPort('127.0.0.2', 8088)).toBe('127.0.0.2:8088');
    expect(() => parseHostPort('a:b:c')).toThrow(/must be HOST:PORT/);
  });

  it("names an agent's IP address to grpc-js by its IP scheme (no name resolver), and a name as it is", () => {
    expect(grpcTarget('127.0.0.2', 8088)).toBe('ipv4:127.0.0.2:8088');
    expect(grpcTarget('::1', 8088)).toBe('ipv6:[::1]:8088');
    expect(grpcTarget('fe80::1%eth0', 8088)).toBe('ipv6:[fe80::1%eth0]:8088');
    expect(grpcTarget('h1.internal', 8088)).toBe('h1.internal:8088');
    expect(grpcTarget('localhost', 9)).toBe('localhost:9');
  });
});
