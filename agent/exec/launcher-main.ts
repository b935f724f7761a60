/**
 * The task launcher: a small long-lived child of the agent that starts and signals task
 * processes on its behalf, speaking the framed protocol of launcher-protocol.ts on stdin/stdout.
 * Spawning here keeps fork() cheap (this process is small) and the agent's event loop free.
 * Output of one tick is sent in one write. When the agent goes (stdin ends, also on kill -9),
 * every task is killed and the launcher exits; sandboxed tasks also die with it (bwrap
 * --die-with-parent). Sandboxes started ahead (warm-pool.ts) run tasks that find one ready.
 */
import { Socket } from 'node:net';
import { commandExists } from './command-exists.js';
import { EarlySignals } from './early-signals.js';
import { encodeFrame, FRAME, FrameDecoder, type Frame, type SpawnHead, type WarmTemplate } from './launcher-protocol.js';
import { spawnOne, type SpawnEvents, type SpawnedProcess } from './spawn-one.js';
import { startsAhead, WarmPools } from './warm-pool.js';
import { BurstCollector } from '../observe/collect-garbage.js';
import { closeInheritedFds } from '../../proto/light.js';

// Descriptors the agent was started with are closed there; any that still reached this process
// must not reach the tasks.
closeInheritedFds();

const out = new Socket({ fd: 1, readable: false, writable: true });
const procs = new Map<number, SpawnedProcess>();
let queue: Buffer[] = [];
let scheduled = false;
/** Output waiting for the end of the tick, per task and stream, to go out as one frame. */
const pendingOutput = new Map<string, { id: number; type: number; chunks: Buffer[] }>();

function flush(): void {
  scheduled = false;
  for (const p of pendingOutput.values()) queue.push(encodeFrame(p.type, p.id, undefined, p.chunks.length === 1 ? p.chunks[0] : Buffer.concat(p.chunks)));
  pendingOutput.clear();
  if (queue.length === 0) return;
  const all = queue.length === 1 ? (queue[0] as Buffer) : Buffer.concat(queue);
  queue = [];
  out.write(all);
}

function schedule(): void {
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

function send(type: number, id: number, head: unknown): void {
  // Keep order: output of this task queued earlier goes first.
  for (const [k, p] of pendingOutput) {
    if (p.id !== id) continue;
    queue.push(encodeFrame(p.type, p.id, undefined, Buffer.concat(p.chunks)));
    pendingOutput.delete(k);
  }
  queue.push(encodeFrame(type, id, head));
  schedule();
}

function output(id: number, stream: 'stdout' | 'stderr', data: Buffer): void {
  const key = `${id}:${stream}`;
  const p = pendingOutput.get(key);
  if (p) p.chunks.push(data);
  else pendingOutput.set(key, { id, type: stream === 'stdout' ? FRAME.STDOUT : FRAME.STDERR, chunks: [data] });
  schedule();
}

/**
 * After a burst of at least 500 tasks, 5 s without one: the heap the burst grew is given back
 * (bench:footprint: this process kept 59 MiB after 10,000 tasks, 42 before them).
 */
const collector = new BurstCollector(500, 5000);

/** Signals that arrived while their task was still starting. */
const early = new EarlySignals();

const pools = new WarmPools((why) => process.stderr.write(`gaxx-launcher: ${why}\n`));

/** A sandbox started ahead, if one is ready and the task may use it (else undefined: start cold). */
function takeWarm(h: SpawnHead, body: Buffer, ev: SpawnEvents): SpawnedProcess | undefined {
  if (!h.warm || !startsAhead(h.warm.template)) return undefined;
  // A missing command is reported by the cold start, as ever.
  if (h.probe && !commandExists(h.probe.argv0, h.probe.path, h.cwd)) return undefined;
  return pools.take(h.warm, h.cwd, body.subarray(h.fd3Bytes), ev);
}

/**
 * Refilling the pool forks here, and a fork holds this loop until the child has exec'd: done
 * while a task that just took a sandbox runs, it would hold back that task's exit. So the pool
 * is refilled once the task has ended (its exit frame out first), or after REFILL_AFTER_MS if
 * it is still running then; the pool decides whether at once or at a quiet moment (refill()).
 */
const REFILL_AFTER_MS = 20;

function onSpawn(f: Frame): void {
  const h = f.head as SpawnHead;
  let exited = false;
  /** A task that may use the pool refills it when it ends, or after REFILL_AFTER_MS. */
  let refill: NodeJS.Timeout | undefined;
  const topUpNow = () => {
    clearTimeout(refill);
    refill = undefined;
    pools.refill();
  };
  collector.started();
  const ev: SpawnEvents = {
    started: (pid, error, startTicks, warm) => send(FRAME.STARTED, f.id, { pid, error, startTicks, ...(warm ? { warm } : {}) }),
    output: (stream, data) => output(f.id, stream, data),
    exit: (code, signal, end) => {
      exited = true;
      procs.delete(f.id);
      early.ended(f.id);
      send(FRAME.EXIT, f.id, { code, signal, signalled: end?.signalled === true, ...(end?.setupFailed ? { setupFailed: end.setupFailed } : {}) });
      if (refill) topUpNow();
      collector.ended();
    },
  };
  if (h.warm && startsAhead(h.warm.template)) refill = setTimeout(topUpNow, REFILL_AFTER_MS);
  const warm = takeWarm(h, f.body, ev);
  if (warm) {
    if (!exited) procs.set(f.id, warm);
    return;
  }
  if (!exited) early.begin(f.id);
  void spawnOne(h, f.body, ev).then((p) => {
    if (exited) return;
    procs.set(f.id, p);
    const phase = early.started(f.id);
    if (phase) p.signal(phase);
  });
}

function onSignal(f: Frame): void {
  const phase = (f.head as { phase: 'term' | 'kill' }).phase;
  const p = procs.get(f.id);
  if (p) p.signal(phase);
  else early.arrived(f.id, phase);
}

const decoder = new FrameDecoder();
process.stdin.on('data', (chunk: Buffer) => {
  for (const f of decoder.push(chunk)) {
    if (f.type === FRAME.SPAWN) onSpawn(f);
    else if (f.type === FRAME.SIGNAL) onSignal(f);
    else if (f.type === FRAME.WARM && startsAhead(f.head as WarmTemplate)) pools.prefill(f.head as WarmTemplate);
  }
});
/** The agent is gone: every task and warm sandbox is ended (warm dirs removed) before exiting. */
function quit(): void {
  for (const p of procs.values()) p.signal('kill');
  pools.drain();
  process.exit(0);
}
process.stdin.on('end', quit);
out.on('error', quit);
