/**
 * Bench: throughput of well-behaved Exec calls (`true`, 8 in flight, operator identity from
 * 127.0.0.1) with and without a flood from another identity and address (127.0.0.2: many
 * connections and Info calls far beyond the rate limit), measured in the same run against the
 * same agent. Prints both rates and their ratio. Run with `npm run bench:flood`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, stopAllAgents } from '../test/helpers/agent.js';
import { floodInChild } from '../test/helpers/flood.js';
import { execCollect, exitOf, rawAgentClient, type RawClients } from '../test/helpers/grpc.js';
import { issueCertDir, makePki } from '../test/helpers/pki.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const IN_FLIGHT = 8;

async function execRate(client: RawClients, label: string, ms: number): Promise<{ rate: number; failed: number }> {
  let done = 0;
  let failed = 0;
  let seq = 0;
  const end = Date.now() + ms;
  const lane = async () => {
    while (Date.now() < end) {
      const r = await execCollect(client.agent, { taskId: `${label}-${seq++}`, argv: ['/bin/true'] });
      if (exitOf(r)?.code === 0) done += 1;
      else failed += 1;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return { rate: (done * 1000) / (Date.now() - t0), failed };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gaxx-bench-flood-'));
  try {
    const pki = await makePki(dir);
    const flooder = await issueCertDir(pki.ca, join(dir, 'clients', 'flooder'), { identity: { role: 'scheduler', name: 'flooder' } });
    const guards = JSON.parse(process.env.BENCH_GUARDS ?? '{}') as object;
    const agent = await startAgent({ certsDir: pki.agent.dir, env: { GAXX_AGENT_GUARDS: JSON.stringify(guards), GAXX_AGENT_CAPACITY: '64', ...JSON.parse(process.env.BENCH_AGENT_ENV ?? '{}') } });
    const client = rawAgentClient(agent.address, pki.clients.operator.dir);
    const read = (d: string, f: string) => readFileSync(join(d, f));
    await execRate(client, 'warm', 1000);
    const quiet = await execRate(client, 'quiet', SECONDS * 1000);
    const flooding = floodInChild({
      port: agent.port,
      localAddress: '127.0.0.2',
      certPem: read(flooder.dir, 'cert.pem'),
      keyPem: read(flooder.dir, 'key.pem'),
      caPem: read(pki.agent.dir, 'ca.pem'),
      connections: 16,
      concurrency: 64,
      durationMs: SECONDS * 1000 + 500,
    });
    // The flood runs in its own process (started first), so it does not slow this one.
    await new Promise((r) => setTimeout(r, 700));
    const loud = await execRate(client, 'loud', SECONDS * 1000);
    const f = await flooding;
    client.close();
    console.log(`Exec true, ${IN_FLIGHT} in flight, ${SECONDS} s each, same agent and run:`);
    console.log(`  without flood: ${quiet.rate.toFixed(0)} calls/s (failed ${quiet.failed})`);
    console.log(`  under flood:   ${loud.rate.toFixed(0)} calls/s (failed ${loud.failed})`);
    console.log(`  ratio under/without: ${(loud.rate / quiet.rate).toFixed(2)}`);
    console.log(`  flood: ${f.calls} calls (${((f.calls * 1000) / (SECONDS * 1000)).toFixed(0)}/s), outcomes by grpc-status ${JSON.stringify(f.outcomes)}, ${f.sessionsOpened} sessions`);
  } finally {
    await stopAllAgents();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
