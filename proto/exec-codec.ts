/**
 * The Exec method's messages in plain code: ExecRequest encoded, ExecEvent decoded, exactly as
 * proto-loader does it with LOADER_OPTIONS (test/unit/exec-codec.test.ts holds the two to the
 * same bytes and the same objects, field by field of agent.proto). A client that only calls
 * Exec (`gaxx exec`, a run without a daemon) so needs neither proto-loader nor protobufjs:
 * loading them and building the method's types took ~9 ms of every such command (the agent,
 * which serves every method, still loads the whole package definition).
 *
 * Encoding follows protobufjs: a field is written when the object has it and it is not null or
 * undefined (an empty string or a zero too), repeated and map fields when not empty, in field
 * number order; strings are coerced with String (a lone surrogate written as protobufjs writes
 * it), 32-bit numbers with >>> 0; 64-bit ones may be numbers, decimal strings or Longs (negative
 * ones are refused); bytes a Buffer (or any Uint8Array) or a base64 string; a repeated field
 * that is not an array, or a map or message that is not an object, is a TypeError, as there.
 * Decoding gives what proto-loader gives: the oneof's one member and its name in `event`, every
 * other field of a message at its default, 64-bit numbers as Numbers, bytes as Buffers; unknown
 * fields are skipped, and a message cut short is a RangeError.
 */
import type { ExecEvent__Output } from './gen/gaxx/agent/v1/ExecEvent.js';
import type { ExecRequest } from './gen/gaxx/agent/v1/ExecRequest.js';
import type { Exit__Output } from './gen/gaxx/agent/v1/Exit.js';
import type { Started__Output } from './gen/gaxx/agent/v1/Started.js';

const TWO_32 = 2 ** 32;
const SURROGATE = /[\ud800-\udfff]/;

/** Bytes being written: tags, varints and short fields gathered in one array, joined once at the end. */
class Out {
  private readonly parts: Buffer[] = [];
  /** Bytes not yet in a part. */
  private small: number[] = [];
  length = 0;

  private flush(): void {
    if (this.small.length === 0) return;
    this.parts.push(Buffer.from(this.small));
    this.small = [];
  }

  private push(b: Buffer): void {
    if (b.length <= 32) for (const x of b) this.small.push(x);
    else {
      this.flush();
      this.parts.push(b);
    }
    this.length += b.length;
  }

  /** An unsigned varint of up to 64 bits, as its low and high 32-bit halves. */
  varint64(lo: number, hi: number): void {
    while (hi > 0 || lo > 0x7f) {
      this.small.push((lo & 0x7f) | 0x80);
      this.length += 1;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.small.push(lo);
    this.length += 1;
  }

  tag(field: number, wire: number): void {
    this.varint64((field << 3) | wire, 0);
  }

  uint32(field: number, v: unknown): void {
    this.tag(field, 0);
    this.varint64(Number(v) >>> 0, 0);
  }

  uint64(field: number, v: unknown): void {
    const n = toUint64(v);
    this.tag(field, 0);
    this.varint64((n % TWO_32) >>> 0, Math.floor(n / TWO_32) >>> 0);
  }

  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint64(b.length, 0);
    this.push(Buffer.from(b.buffer, b.byteOffset, b.length));
  }

  string(field: number, v: unknown): void {
    this.bytes(field, utf8(String(v)));
  }

  message(field: number, inner: Out): void {
    this.tag(field, 2);
    this.varint64(inner.length, 0);
    inner.flush();
    for (const p of inner.parts) this.push(p);
  }

  finish(): Buffer {
    this.flush();
    return Buffer.concat(this.parts, this.length);
  }
}

/**
 * A string's UTF-8 bytes as protobufjs writes them: a lone surrogate (a JS string can hold one,
 * from a JSON escape say) as its own three bytes, not as U+FFFD, so the agent reads back the very
 * string that was signed.
 */
function utf8(s: string): Buffer {
  // No surrogates at all (the common case): Node's encoder gives the same bytes.
  if (!SURROGATE.test(s)) return Buffer.from(s, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    if (c >= 0xd800 && c < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
      c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
      i++;
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return Buffer.from(out);
}

/**
 * A 64-bit field's value as protobufjs's fromObject takes it: a number, a decimal string, or a
 * Long ({ low, high }). These fields hold sizes and times: a negative value is refused.
 */
function toUint64(v: unknown): number {
  if (typeof v === 'object' && v !== null && 'low' in v && 'high' in v) return (Number(v.high) >>> 0) * TWO_32 + (Number(v.low) >>> 0);
  const n = Math.trunc(typeof v === 'string' ? parseInt(v, 10) : Number(v));
  if (Number.isNaN(n)) return 0;
  if (n < 0 || !Number.isFinite(n)) throw new RangeError(`a 64-bit unsigned field cannot hold ${String(v)}`);
  return n;
}

function toBytes(v: unknown): Uint8Array {
  if (typeof v === 'string') return Buffer.from(v, 'base64');
  if (v instanceof Uint8Array) return v;
  throw new TypeError('a bytes field takes a Buffer, a Uint8Array or a base64 string');
}

/** Whether `o` has field `k` set (present, not null or undefined), as protobufjs's encoder asks. */
function has<T extends object>(o: T, k: keyof T): boolean {
  return Object.prototype.hasOwnProperty.call(o, k) && o[k] != null;
}

/** A repeated field's values; like protobufjs's fromObject, a TypeError for anything but an array. */
function list(v: unknown, field: string): unknown[] {
  // protobufjs asks `if (d.argv)`: an empty string or a zero is no list, not an error.
  if (!v) return [];
  if (!Array.isArray(v)) throw new TypeError(`ExecRequest ${field}: array expected`);
  return v;
}

/** A map or message field's object; like protobufjs's fromObject, a TypeError for anything else. */
function object<T>(v: T, field: string): NonNullable<T> {
  if (typeof v !== 'object' || v === null) throw new TypeError(`ExecRequest ${field}: object expected`);
  return v as NonNullable<T>;
}

/** ExecRequest's wire bytes. */
export function encodeExecRequest(req: ExecRequest): Buffer {
  const w = new Out();
  if (has(req, 'taskId')) w.string(1, req.taskId);
  for (const a of list(req.argv, 'argv')) w.string(2, a);
  if (req.env) {
    for (const [k, v] of Object.entries(object(req.env, 'env'))) {
      const entry = new Out();
      entry.string(1, k);
      entry.string(2, v);
      w.message(3, entry);
    }
  }
  if (has(req, 'workDir')) w.string(4, req.workDir);
  if (has(req, 'stdin')) w.bytes(5, toBytes(req.stdin));
  if (has(req, 'timeoutMs')) w.uint32(6, req.timeoutMs);
  if (has(req, 'outputCapBytes')) w.uint64(7, req.outputCapBytes);
  if (has(req, 'signed')) {
    const s = object(req.signed, 'signed');
    const sw = new Out();
    if (has(s, 'runId')) sw.string(1, s.runId);
    if (has(s, 'taskId')) sw.string(2, s.taskId);
    if (has(s, 'target')) {
      const t = object(s.target, 'signed.target');
      const tw = new Out();
      if (has(t, 'fleet')) tw.string(1, t.fleet);
      if (has(t, 'host')) tw.string(2, t.host);
      for (const a of list(t.agents, 'signed.target.agents')) tw.string(3, a);
      sw.message(3, tw);
    }
    if (has(s, 'expiresAtUnixMs')) sw.uint64(4, s.expiresAtUnixMs);
    if (has(s, 'maxRounds')) sw.uint32(5, s.maxRounds);
    if (has(s, 'signature')) sw.bytes(6, toBytes(s.signature));
    if (has(s, 'signerCertPem')) sw.string(7, s.signerCertPem);
    if (has(s, 'signedAtUnixMs')) sw.uint64(8, s.signedAtUnixMs);
    w.message(8, sw);
  }
  if (has(req, 'existingOnly')) w.uint32(9, req.existingOnly ? 1 : 0);
  if (has(req, 'journalId')) w.string(10, req.journalId);
  return w.finish();
}

/** Bytes being read. */
class In {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    readonly end = buf.length,
  ) {}

  /** An unsigned varint as [low, high] 32-bit halves. */
  varint64(): [number, number] {
    let lo = 0;
    let hi = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) throw new RangeError('ExecEvent: truncated varint');
      const b = this.buf[this.pos++] as number;
      const bits = b & 0x7f;
      if (shift < 28) lo |= bits << shift;
      else if (shift === 28) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (shift - 32);
      if ((b & 0x80) === 0) return [lo >>> 0, hi >>> 0];
    }
    throw new RangeError('ExecEvent: varint too long');
  }

  uint64(): number {
    const [lo, hi] = this.varint64();
    return hi * TWO_32 + lo;
  }

  int32(): number {
    return this.varint64()[0] | 0;
  }

  bool(): boolean {
    const [lo, hi] = this.varint64();
    return lo !== 0 || hi !== 0;
  }

  /** A length-delimited field's bytes (a view, as protobufjs gives for a Buffer). */
  bytes(): Buffer {
    const [n, hi] = this.varint64();
    if (hi !== 0) throw new RangeError('ExecEvent: field longer than the message');
    const start = this.pos;
    if (start + n > this.end) throw new RangeError('ExecEvent: truncated field');
    this.pos += n;
    return this.buf.subarray(start, start + n);
  }

  string(): string {
    return this.bytes().toString('utf8');
  }

  /** The bytes of a nested message, as a reader of their own. */
  sub(): In {
    const b = this.bytes();
    return new In(b);
  }

  skip(wire: number): void {
    if (wire === 0) this.varint64();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new RangeError(`ExecEvent: unsupported wire type ${wire}`);
    if (this.pos > this.end) throw new RangeError('ExecEvent: truncated field');
  }

  /** Each field's number and wire type, to its end. */
  *fields(): Generator<[number, number]> {
    while (this.pos < this.end) {
      const key = this.varint64()[0];
      yield [key >>> 3, key & 7];
    }
  }
}

function decodeStarted(r: In): Started__Output {
  const s: Started__Output = { pid: 0, attached: false, replayed: false, fromStart: false, journalId: '' };
  for (const [f, wire] of r.fields()) {
    if (f === 1 && wire === 0) s.pid = r.int32();
    else if (f === 2 && wire === 0) s.attached = r.bool();
    else if (f === 3 && wire === 0) s.replayed = r.bool();
    else if (f === 4 && wire === 0) s.fromStart = r.bool();
    else if (f === 5 && wire === 2) s.journalId = r.string();
    else r.skip(wire);
  }
  return s;
}

function decodeExit(r: In): Exit__Output {
  const e: Exit__Output = { code: 0, signal: '', durationMs: 0, truncated: false, stdoutBytes: 0, stderrBytes: 0, reason: '', error: '', outputCapped: false };
  for (const [f, wire] of r.fields()) {
    if (f === 1 && wire === 0) e.code = r.int32();
    else if (f === 2 && wire === 2) e.signal = r.string();
    else if (f === 3 && wire === 0) e.durationMs = r.uint64();
    else if (f === 4 && wire === 0) e.truncated = r.bool();
    else if (f === 5 && wire === 0) e.stdoutBytes = r.uint64();
    else if (f === 6 && wire === 0) e.stderrBytes = r.uint64();
    else if (f === 7 && wire === 2) e.reason = r.string();
    else if (f === 8 && wire === 2) e.error = r.string();
    else if (f === 9 && wire === 0) e.outputCapped = r.bool();
    else r.skip(wire);
  }
  return e;
}

/** An ExecEvent from its wire bytes. */
export function decodeExecEvent(buf: Buffer): ExecEvent__Output {
  const r = new In(buf);
  let ev: ExecEvent__Output = {};
  for (const [f, wire] of r.fields()) {
    // A oneof keeps the last member on the wire, as protobufjs does.
    if (f === 1 && wire === 2) ev = { started: decodeStarted(r.sub()), event: 'started' };
    else if (f === 2 && wire === 2) ev = { stdout: r.bytes(), event: 'stdout' };
    else if (f === 3 && wire === 2) ev = { stderr: r.bytes(), event: 'stderr' };
    else if (f === 4 && wire === 2) ev = { exit: decodeExit(r.sub()), event: 'exit' };
    else r.skip(wire);
  }
  return ev;
}
