/**
 * The memory a group of processes holds together, each physical page counted once. RSS counts
 * a page once per process that maps it: an agent and its task launcher are two Node processes
 * that share the node binary's and the libraries' pages, so adding their RSS overstates what
 * they cost the machine (and PSS understates it: it splits shared pages with every other Node
 * process on the machine too).
 *
 * Read from /proc/<pid>/maps and /proc/<pid>/pagemap: a present page's entry holds its page
 * frame number, which Linux shows only to a process with CAP_SYS_ADMIN (else every number
 * reads as 0). Mappings with no access (address space reserved, not backed) are skipped.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

const PAGE = 4096;
const PRESENT = 1n << 63n;
const PFN_MASK = (1n << 55n) - 1n;
/** Page entries read per pread (8 bytes each). */
const CHUNK_PAGES = 4096;

/** Physical page frames resident in `pid`'s mappings (those with some access), or undefined when the frame numbers are hidden. */
export function residentFrames(pid: number): Set<number> | undefined {
  const frames = new Set<number>();
  let present = 0;
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    const buf = Buffer.alloc(CHUNK_PAGES * 8);
    for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4})/.exec(line);
      if (!m || m[3]?.startsWith('---') || line.endsWith('[vsyscall]')) continue;
      const first = Number.parseInt(m[1] as string, 16) / PAGE;
      const end = Number.parseInt(m[2] as string, 16) / PAGE;
      for (let page = first; page < end; page += CHUNK_PAGES) {
        const n = Math.min(CHUNK_PAGES, end - page);
        const got = readSync(fd, buf, 0, n * 8, page * 8);
        for (let off = 0; off + 8 <= got; off += 8) {
          const e = buf.readBigUInt64LE(off);
          if ((e & PRESENT) === 0n) continue;
          present += 1;
          frames.add(Number(e & PFN_MASK));
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  // Hidden frame numbers all read as 0.
  if (present > 0 && frames.size === 1 && frames.has(0)) return undefined;
  return frames;
}

/** Bytes resident in any of `pids`, each physical page once; undefined when the frame numbers are hidden (not root). */
export function residentTogether(pids: readonly number[]): number | undefined {
  const all = new Set<number>();
  for (const pid of pids) {
    const frames = residentFrames(pid);
    if (frames === undefined) return undefined;
    for (const f of frames) all.add(f);
  }
  return all.size * PAGE;
}
