/**
 * The sandbox's own cost, the ceiling of sandboxed Exec: `spawn(bwrap, <the agent's sandbox
 * options>, true)` with stdio pipes until 'close', under the plan given as JSON in argv[2], in a
 * process that does nothing else; prints the Measurement as JSON. The options are the ones the
 * agent builds for a task (agent/exec/sandbox.ts: user, pid, ipc and cgroup namespaces, / read-only,
 * a fresh /dev, /proc and /tmp, the work dir argv[3] writable, the agent's cert, audit and state
 * dirs hidden under tmpfs), on the command line rather than on fd 3, and the same work dir for
 * every sandbox (the agent makes a fresh one per task): a kind baseline. Run it as the agent's
 * user: bwrap then makes its namespaces as the agent's tasks get them, unprivileged.
 *
 *   node dist/bench/lib/sandbox-alone.js '{"warmup":500,"warmupMin":3000,"warmupMax":6000,"sequential":300,"perLevel":1000,"levels":[1,8,32]}' WORKDIR
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectSandbox, mountOptions, sandboxMounts } from '../../agent/exec/sandbox.js';
import { printMeasurement, profile, type Measurement, type Plan } from './profile.js';
import { runToClose } from './spawn-alone.js';

/** The bwrap argv of one sandboxed `true` in `workDir`, as the agent would start it; refuses where bwrap cannot sandbox. */
export async function sandboxedTrue(workDir: string): Promise<string[]> {
  const s = await detectSandbox();
  if (s.kind !== 'bwrap') throw new Error(`no sandbox here: ${s.detail}; ${s.remedy}`);
  const hidden = ['certs', 'audit', 'state'].map((d) => join(workDir, d));
  const cwd = join(workDir, 'task');
  for (const d of [...hidden, cwd]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const [certsDir, auditDir, stateDir] = hidden as [string, string, string];
  const m = sandboxMounts(s, { certsDir, auditDir, stateDir });
  return [s.bwrap, ...mountOptions(m, cwd), '--', 'true'];
}

/** Measures `argv` started and waited for (stdio pipes, as the agent's tasks) under `plan`. */
export function sandboxAlone(plan: Plan, argv: string[]): Promise<Measurement> {
  const [file, ...args] = argv as [string, ...string[]];
  return profile({ name: 'sandbox-alone', label: 'bwrap <the agent sandbox> true, as the agent user' }, plan, () => runToClose(file, args));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printMeasurement(
    'sandbox-alone',
    sandboxedTrue(process.argv[3] ?? '').then((argv) => sandboxAlone(JSON.parse(process.argv[2] ?? '') as Plan, argv)),
  );
}
