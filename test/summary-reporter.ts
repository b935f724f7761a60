/**
 * Ends a vitest run with one plain line, `N passed, N failed, N skipped`, that any CI log reader
 * understands, after vitest's own summary.
 *
 * It also ends a run that a test file would hold forever. vitest's timeouts are timers in the
 * worker: a worker blocked in a synchronous call (a child process that never exits, a thread
 * waiting on a lock it can never take) never fires them, and the run waits until CI kills it,
 * with no word of which file. Here the main process, whose event loop those workers cannot
 * block, ends the run once a file has run longer than the limit (GAXX_TEST_FILE_LIMIT_S, 600 s by
 * default: the slowest file takes well under a minute): it names every file still running, ends
 * the workers it started, and exits 1.
 */
import type { Reporter, TestModule } from 'vitest/node';
import { childPids } from './helpers/procs.js';

/** Which files have run longer than a limit, from when each started and ended. */
export class HangWatch {
  private readonly started = new Map<string, number>();

  constructor(private readonly limitMs: number) {}

  start(file: string, now: number): void {
    this.started.set(file, now);
  }

  end(file: string): void {
    this.started.delete(file);
  }

  /** The files running at `now`, with how long, longest first. */
  running(now: number): { file: string; ms: number }[] {
    return [...this.started].map(([file, t]) => ({ file, ms: now - t })).sort((a, b) => b.ms - a.ms);
  }

  /** The files running for longer than the limit at `now`, longest first. */
  overdue(now: number): { file: string; ms: number }[] {
    return this.running(now).filter((f) => f.ms > this.limitMs);
  }
}

/** The limit from GAXX_TEST_FILE_LIMIT_S (seconds, > 0), else 600 s. */
export function fileLimitMs(env: NodeJS.ProcessEnv = process.env): number {
  const s = Number(env.GAXX_TEST_FILE_LIMIT_S);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 600_000;
}

export default class SummaryReporter implements Reporter {
  private readonly limitMs = fileLimitMs();
  private readonly watch = new HangWatch(this.limitMs);
  private timer: NodeJS.Timeout | undefined;

  onTestRunStart(): void {
    const every = Math.min(10_000, this.limitMs / 4);
    this.timer = setInterval(() => this.check(), every);
    this.timer.unref();
  }

  // From when a worker takes the file, before it loads it: a file can block while loading too.
  onTestModuleQueued(m: TestModule): void {
    this.watch.start(m.relativeModuleId, Date.now());
  }

  onTestModuleEnd(m: TestModule): void {
    this.watch.end(m.relativeModuleId);
  }

  private check(): void {
    const now = Date.now();
    if (this.watch.overdue(now).length === 0) return;
    // Every file still running is named: another one may have blocked a little later.
    const lines = this.watch.running(now).map((f) => `  ${f.file}: running for ${Math.round(f.ms / 1000)} s${f.ms > this.limitMs ? ', past the limit' : ''}`);
    process.stderr.write(
      `\ntest files still running after the ${this.limitMs / 1000} s limit (GAXX_TEST_FILE_LIMIT_S); ` +
        `a worker blocked in a synchronous call never reaches its own timeouts:\n${lines.join('\n')}\n` +
        'ending its workers and the run (exit 1)\n',
    );
    for (const pid of childPids(process.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.exit(1);
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    clearInterval(this.timer);
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed' || state === 'failed' || state === 'skipped') count[state]++;
      }
      // A file that failed to load has no tests to count; it is a failure all the same.
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) count.failed++;
    }
    process.stdout.write(`\n${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
  }
}
