/**
 * The scheduler daemon's certificate renewal loop. Every round (the interval, jittered by +-10%)
 * it walks the fleets registered in Redis, asks each agent's Info with the scheduler certificate
 * and renews those that report renewal as due or whose certificate ends within a safety margin
 * (scheduler/renewal.ts, the same code as `gaxx certs rotate --due-only`).
 *
 * The push needs the operator role: the agent's cert area is operator-only by policy, and that
 * policy stays. The daemon runs on the controller, which holds the CA (and so can mint any
 * certificate) anyway; the operator certificate adds no power it lacks. Without the CA or the
 * operator certificate the loop logs once and stays off (a scheduler elsewhere renews nothing).
 * A round never throws: failures are logged, counted and retried the next round.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Counter, Registry } from 'prom-client';
import { promClient } from '../daemon/prom-client.cjs';
import { currentCredentials, FleetCa, loadCertDir, ownCertificateRevoked, withCaRevocations, type CertBundle, type Credentials } from '../../certs/index.js';
import { GaxxError, isGaxxError } from '../../proto/index.js';
import { fleetAgents, registeredFleets } from '../queue/fleets.js';
import { issuedAgentCerts, renewalReason, rotateAgent, type RenewalReason, type RotationResult, type RotationTarget } from './renewal.js';
import type { WorkerLog } from '../dispatch/worker.js';

export interface RenewerOptions {
  redis: Redis | Cluster;
  /** The agents' bearer token, when they require one. */
  token?: string | undefined;
  /** Round period; 0 turns renewal off. */
  intervalMs: number;
  /** The fleet CA (ca.pem, ca-key.pem). */
  caDir: string;
  /** The operator's cert dir: pushes into the agents' cert area. */
  operatorCertDir: string;
  /** The scheduler's certificate, for the Info calls (a source: the one in force each round). */
  schedulerCreds: Credentials;
  /** Renew when the certificate ends within this; default max(3 intervals, 1 h). */
  marginMs?: number;
  /** How long an agent may take to present its new certificate (default 60 s). */
  verifyMs?: number;
  /** Agents handled at once (default 4). */
  parallel?: number;
  /** Where `gaxx_scheduler_cert_renewals_total{outcome}` is registered. */
  registry?: Registry;
  log: WorkerLog;
  /**
   * Holds fleet `fleet` for the round's renewals of its agents (the CLI's fleet lock: no spawn,
   * delete or `gaxx certs rotate` of it meanwhile): its release, or why it cannot be held now
   * (another command holds it; the fleet is renewed in a later round).
   */
  holdFleet?: (fleet: string) => { release(): void } | { held: string };
}

/** What one round did, by agent outcome. */
export interface RoundSummary {
  renewed: number;
  failed: number;
  notDue: number;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

/** The renewal loop of one daemon. */
export class CertRenewer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly renewals: Counter<'outcome'>;

  private constructor(private readonly opts: RenewerOptions) {
    const { Counter } = promClient();
    this.renewals = new Counter({
      name: 'gaxx_scheduler_cert_renewals_total',
      help: 'Agent certificate renewal checks, by outcome (renewed, failed, not_due)',
      labelNames: ['outcome'],
      registers: opts.registry ? [opts.registry] : [],
    });
    for (const o of ['renewed', 'failed', 'not_due']) this.renewals.inc({ outcome: o }, 0);
  }

  /**
   * Starts the loop; undefined (logged once) when the interval is 0 or the CA or operator
   * certificate is missing or unusable.
   */
  static start(opts: RenewerOptions): CertRenewer | undefined {
    if (opts.intervalMs <= 0) {
      opts.log.info({}, 'certificate renewal off (interval 0)');
      return undefined;
    }
    try {
      FleetCa.open(opts.caDir);
      loadCertDir(opts.operatorCertDir);
    } catch (e) {
      const code = isGaxxError(e) ? e.code : 'INTERNAL';
      opts.log.warn({ code, err: (e as Error).message }, 'certificate renewal off: no usable CA or operator certificate');
      return undefined;
    }
    const r = new CertRenewer(opts);
    r.schedule();
    opts.log.info({ intervalMs: opts.intervalMs, marginMs: r.marginMs() }, 'certificate renewal on');
    return r;
  }

  private marginMs(): number {
    return this.opts.marginMs ?? Math.max(3 * this.opts.intervalMs, 3_600_000);
  }

  private schedule(): void {
    if (this.stopped) return;
    // Capped at setTimeout's limit (~24.8 days), beyond which Node would fire at once.
    const delay = Math.min(Math.round(this.opts.intervalMs * (0.9 + Math.random() * 0.2)), 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      this.running = this.round()
        .then(
          () => undefined,
          (e: unknown) =>
            this.opts.log.error(
              { code: isGaxxError(e) ? e.code : 'INTERNAL', err: e instanceof Error ? e.message : String(e) },
              'certificate renewal round failed; retried next round',
            ),
        )
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, delay);
    this.timer.unref();
  }

  /** One pass over every registered fleet. Throws only when the fleets, CA or credentials cannot be read. */
  async round(): Promise<RoundSummary> {
    const log = this.opts.log;
    const ca = FleetCa.open(this.opts.caDir);
    // Read every round: a renewed operator certificate is picked up without a restart. Agents
    // the CA revoked are refused on the push connection too.
    const operator = withCaRevocations(loadCertDir(this.opts.operatorCertDir), this.opts.caDir);
    // Its dir's revoked.json is a copy from when it was issued: the CA's list is the one agents get.
    if (ownCertificateRevoked(operator))
      throw new GaxxError(
        'CERT_REVOKED',
        `the operator certificate ${operator.summary.serial} in ${this.opts.operatorCertDir} is revoked (${this.opts.caDir}/revoked.json): agents refuse its pushes; 'gaxx init' issues a new one, used from the next round`,
      );
    const infoCreds = await currentCredentials(this.opts.schedulerCreds);
    const targets: RotationTarget[] = [];
    const holds: { release(): void }[] = [];
    try {
      for (const fleet of await registeredFleets(this.opts.redis)) {
        const hold = this.opts.holdFleet?.(fleet);
        if (hold && 'held' in hold) {
          log.info({ fleet, reason: hold.held }, 'certificate renewal: fleet skipped this round (another command holds it)');
          continue;
        }
        if (hold) holds.push(hold);
        const records = new Map(issuedAgentCerts(ca, fleet).map((r) => [(r.identity as { host: string }).host, r]));
        for (const a of await fleetAgents(this.opts.redis, fleet)) targets.push({ fleet, host: a.host, address: a.address, record: records.get(a.host) });
      }
      return await this.renew(ca, operator, infoCreds, targets);
    } finally {
      for (const h of holds) h.release();
    }
  }

  /** Renews each of `targets` that is due, at most `parallel` at a time. */
  private async renew(ca: FleetCa, operator: CertBundle, infoCreds: CertBundle, targets: RotationTarget[]): Promise<RoundSummary> {
    const log = this.opts.log;
    const summary: RoundSummary = { renewed: 0, failed: 0, notDue: 0 };
    await mapLimit(targets, this.opts.parallel ?? 4, async (t) => {
      if (this.stopped) return;
      let reason: RenewalReason | undefined;
      const res = await rotateAgent(ca, t, operator, {
        infoCreds,
        token: this.opts.token,
        verifyMs: this.opts.verifyMs ?? 60_000,
        signal: this.abort.signal,
        refuseRevoked: true,
        select: (info) => {
          reason = renewalReason(info, this.marginMs());
          return reason !== undefined;
        },
      });
      this.record(t.fleet, res, reason, summary);
    });
    if (summary.renewed || summary.failed) log.info({ ...summary }, 'certificate renewal round');
    return summary;
  }

  private record(fleet: string, res: RotationResult, reason: RenewalReason | undefined, summary: RoundSummary): void {
    const at = { fleet, host: res.host, address: res.address };
    if (res.skipped) {
      summary.notDue++;
      this.renewals.inc({ outcome: 'not_due' });
    } else if (res.ok) {
      summary.renewed++;
      this.renewals.inc({ outcome: 'renewed' });
      this.opts.log.info(
        { ...at, reason, oldSerial: res.oldSerial, newSerial: res.newSerial, revoked: res.revoked, revocationPushed: res.revocationPushed },
        'agent certificate renewed',
      );
    } else {
      summary.failed++;
      this.renewals.inc({ outcome: 'failed' });
      this.opts.log.warn(
        { ...at, reason, code: res.code ?? 'UNAVAILABLE', err: res.error, newSerial: res.newSerial || undefined },
        'agent certificate renewal failed; retried next round',
      );
    }
  }

  /** Stops the loop; a round in progress ends its waits and is given at most `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise((r) => (t = setTimeout(r, graceMs)))]);
    clearTimeout(t);
  }
}
