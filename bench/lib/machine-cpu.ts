/**
 * CPU time the whole machine spent (every process and the kernel, from /proc/stat), for benches
 * whose processes share this machine's cores: `busyMs / cores` is the least wall time that work
 * could have taken here, however well it was spread.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** USER_HZ: /proc/stat counts in 1/100 s on Linux. */
const TICK_MS = 10;

/** Busy CPU time of the machine so far (all but idle and iowait), in ms. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0);
  return busy * TICK_MS;
}

/** Starts a measurement; `stop()` returns the busy ms since and the floor it puts on wall time. */
export function machineCpu(): { stop(): { busyMs: number; floorMs: number } } {
  const start = machineBusyMs();
  return {
    stop() {
      const busyMs = machineBusyMs() - start;
      return { busyMs, floorMs: busyMs / cpus().length };
    },
  };
}

/**
 * Waits until the machine is nearly idle (under `maxBusy` of its cores over a 200 ms window:
 * e.g. the kernel tearing down the namespaces of an earlier round), at most `maxMs`. Returns
 * whether it got there.
 */
export async function untilQuiet(maxBusy = 0.15, maxMs = 15_000): Promise<boolean> {
  const windowMs = 200;
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const m = machineCpu();
    await new Promise((r) => setTimeout(r, windowMs));
    if (m.stop().floorMs / windowMs < maxBusy) return true;
  }
  return false;
}
