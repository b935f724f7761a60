/**
 * Bench: bootstrap time of 1, 10 and 20 hosts, from "the host has an address" (its sshd is up)
 * to "its agent answers Health over mTLS", with one host as the baseline measured in the same
 * run (before and after the fleets, averaged). Hosts are the isolated sshd test hosts (own
 * network and mount namespaces), so this needs root, like the integration tests.
 *
 * Unlike VMs, these hosts share this machine's cores: every host's sshd, package checks and
 * agent start (a Node process) compete with the controller, so wall time on a small machine
 * grows with the fleet for reasons a real fleet does not have. The controller's own CPU per
 * host is printed beside it: that is the part that scales with fleet size in production. So is
 * the whole machine's CPU per host and the floor it puts on wall time here (machine CPU / cores):
 * a wall time near that floor means the bootstrap is bound by this machine's cores, not by how
 * the controller spreads the work.
 *
 * Usage: npm run bench:spawn [-- --sizes 1,10,20] [-- --json] [-- --trace (each host's steps, to stderr)]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetCa, loadCertDir, type CertBundle } from '../certs/index.js';
import { bootstrapHosts, type BootstrapTarget } from '../cli/bootstrap/index.js';
import { KnownHosts, ensureSshKeyPair, type SshKeyPair } from '../cli/ssh/index.js';
import { builtAgentBundle } from '../test/helpers/agent.js';
import { issueCertDir } from '../test/helpers/pki.js';
import { startTestHost, stopAllTestHosts } from '../test/helpers/test-host.js';
import { benchArgs } from './lib/args.js';
import { machineCpu, untilQuiet } from './lib/machine-cpu.js';
import { median } from './lib/timing.js';

interface World {
  dir: string;
  ca: FleetCa;
  operator: CertBundle;
  key: SshKeyPair;
  bundle: string;
}

interface Run {
  hosts: number;
  wallMs: number;
  perHostP50Ms: number;
  perHostMaxMs: number;
  failed: number;
  /** CPU time of this (controller) process during the bootstrap, per host. */
  controllerCpuMsPerHost: number;
  /** CPU time of the whole machine during the bootstrap (hosts, controller, kernel), per host. */
  machineCpuMsPerHost: number;
  /** The least wall time that CPU allows on this machine's cores (machine CPU / cores). */
  cpuFloorMs: number;
}

async function world(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'gx-bench-spawn-'));
  const { ca } = await FleetCa.init(join(dir, 'ca'));
  await issueCertDir(ca, join(dir, 'operator'), { identity: { role: 'operator', name: 'bench' } });
  const key = ensureSshKeyPair(join(dir, 'id_ed25519'), join(dir, 'id_ed25519.pub'), 'gaxx-bench');
  return { dir, ca, operator: loadCertDir(join(dir, 'operator')), key, bundle: builtAgentBundle() };
}

/** Starts n hosts (not timed), then times bootstrapHosts over them. */
async function measure(w: World, n: number, round: number, trace: boolean): Promise<Run> {
  const hosts = await Promise.all(Array.from({ length: n }, () => startTestHost({ authorizedKeys: [w.key.publicKey] })));
  const knownHosts = new KnownHosts(join(w.dir, `known_hosts-${round}`));
  for (const h of hosts) knownHosts.add(h.address, 22, h.hostPublicKey, `bench${round}`);
  const privateKey = readFileSync(w.key.privateKeyPath);
  const targets: BootstrapTarget[] = hosts.map((h, i) => ({
    name: `h${i + 1}`,
    host: h.address,
    port: 22,
    user: 'root',
    privateKey,
    hostKey: { kind: 'known-hosts', knownHosts, acceptNew: false },
    addresses: [h.address],
  }));
  // The kernel may still be tearing down an earlier round's hosts (namespaces, mounts).
  if (!(await untilQuiet())) console.error('bench: the machine did not quiet down in 15 s; this round runs beside other work');
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const machine = machineCpu();
  const results = await bootstrapHosts(targets, {
    fleet: `bench${round}`,
    ca: w.ca,
    agentBundle: w.bundle,
    operatorCreds: w.operator,
    operatorPublicKey: w.key.publicKey,
    controllerAddresses: [hosts[0]?.controllerAddress as string],
    connectDeadlineMs: 60_000,
    ...(trace ? { onProgress: (e) => console.error(`${(performance.now() - started).toFixed(0).padStart(6)} ms ${e.host} ${e.step}`) } : {}),
  });
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  const { busyMs, floorMs } = machine.stop();
  const controllerCpuMsPerHost = (cpu.user + cpu.system) / 1000 / n;
  await stopAllTestHosts();
  const failed = results.filter((r) => !r.ok);
  for (const f of failed) if (!f.ok) console.error(`bench: ${f.name}: ${f.error.code}: ${f.error.message}`);
  return {
    hosts: n,
    wallMs,
    perHostP50Ms: median(results.map((r) => r.ms)),
    perHostMaxMs: Math.max(...results.map((r) => r.ms)),
    failed: failed.length,
    controllerCpuMsPerHost,
    machineCpuMsPerHost: busyMs / n,
    cpuFloorMs: floorMs,
  };
}

function format(runs: Run[], baselineMs: number): string {
  const lines = [
    `${'hosts'.padEnd(8)}${'wall ms'.padStart(10)}${'per-host p50'.padStart(14)}${'per-host max'.padStart(14)}${'x baseline'.padStart(12)}${'ctl cpu ms/host'.padStart(17)}${'all cpu ms/host'.padStart(17)}${'cpu floor ms'.padStart(14)}${'failed'.padStart(8)}`,
  ];
  for (const r of runs) {
    const cells = [
      r.wallMs.toFixed(0).padStart(10),
      r.perHostP50Ms.toFixed(0).padStart(14),
      r.perHostMaxMs.toFixed(0).padStart(14),
      (r.wallMs / baselineMs).toFixed(2).padStart(12),
      r.controllerCpuMsPerHost.toFixed(0).padStart(17),
      r.machineCpuMsPerHost.toFixed(0).padStart(17),
      r.cpuFloorMs.toFixed(0).padStart(14),
    ];
    lines.push(`${String(r.hosts).padEnd(8)}${cells.join('')}${String(r.failed).padStart(8)}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const values = benchArgs('usage: node dist/bench/spawn.js [--sizes 1,10,20] [--trace] [--json]', {
    sizes: { type: 'string', default: '1,10,20' },
    json: { type: 'boolean', default: false },
    trace: { type: 'boolean', default: false },
  });
  const sizes = values.sizes
    .split(',')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n >= 1 && n <= 100);
  if (process.getuid?.() !== 0) throw new Error('bench:spawn needs root (it makes network namespaces and overlay mounts)');
  const w = await world();
  try {
    let round = 0;
    const before = await measure(w, 1, round++, values.trace);
    const runs: Run[] = [];
    for (const n of sizes) runs.push(await measure(w, n, round++, values.trace));
    const after = await measure(w, 1, round++, values.trace);
    const baselineMs = (before.wallMs + after.wallMs) / 2;
    const report = {
      machine: { cpus: cpus().length, loadavg: loadavg() },
      baselineMs,
      baseline: [before, after],
      runs,
      ratios: runs.map((r) => ({ hosts: r.hosts, overBaseline: r.wallMs / baselineMs })),
    };
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else {
      console.log(`bootstrap: "has an address" -> "agent healthy" (${cpus().length} cores, load ${loadavg()[0]?.toFixed(2)})`);
      console.log(`baseline: one host, ${before.wallMs.toFixed(0)} ms before and ${after.wallMs.toFixed(0)} ms after the fleets`);
      console.log(format(runs, baselineMs));
    }
  } finally {
    await stopAllTestHosts();
    rmSync(w.dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench:spawn failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
