/**
 * The process-start baseline measured in a process that does nothing else: `spawn('true')` with
 * stdio pipes until 'close', under the plan given as JSON in argv[2]; prints the Measurement as
 * JSON. Starting a process costs its parent more the more memory the parent maps (fork copies
 * its page tables), so the same loop in a bench process that holds clients, certificates and
 * results is a slower, kinder baseline; bench/agent-exec.ts reports Exec against both.
 *
 *   node dist/bench/lib/spawn-alone.js '{"warmup":500,"warmupMin":3000,"warmupMax":6000,"sequential":300,"perLevel":1000,"levels":[1,8,32]}'
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { printMeasurement, profile, type Measurement, type Plan } from './profile.js';

/** Spawns `file` with stdio pipes and waits for 'close', as the agent's tasks are waited for; rejects unless it exits 0. */
export function runToClose(file: string, args: readonly string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args);
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${file} exited with ${code}`))));
  });
}

/** Spawns `true` and waits for 'close'. */
const spawnTrue = (): Promise<void> => runToClose('true');

/** Measures spawnTrue under `plan` in this process. */
export function spawnAlone(plan: Plan): Promise<Measurement> {
  return profile({ name: 'spawn-alone', label: "spawn('true') in a process of its own" }, plan, spawnTrue);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printMeasurement('spawn-alone', spawnAlone(JSON.parse(process.argv[2] ?? '') as Plan));
}
