/**
 * Stops that arrive while their task is still starting (its process not there yet to signal),
 * kept until it is there. Only a task known to be starting has one kept: a stop that crosses its
 * task's exit on the way (the agent sent it before the exit reached it) names a task that is gone
 * and will never start again (task numbers are not reused), and kept it would stay for the
 * launcher's life.
 */
export type StopPhase = 'term' | 'kill';

export class EarlySignals {
  private readonly starting = new Set<number>();
  private readonly early = new Map<number, StopPhase>();

  /** Task `id` is being started: a stop for it is kept until `started` or `ended`. */
  begin(id: number): void {
    this.starting.add(id);
  }

  /**
   * A stop for a task with no process to signal: kept when it is starting (a kill is never
   * weakened to a term), dropped otherwise. Whether it was kept.
   */
  arrived(id: number, phase: StopPhase): boolean {
    if (!this.starting.has(id)) return false;
    if (this.early.get(id) !== 'kill') this.early.set(id, phase);
    return true;
  }

  /** Task `id`'s process is there: the stop kept for it, to send now, if any. */
  started(id: number): StopPhase | undefined {
    const phase = this.early.get(id);
    this.ended(id);
    return phase;
  }

  /** Task `id` ended (or never started): nothing is kept for it. */
  ended(id: number): void {
    this.starting.delete(id);
    this.early.delete(id);
  }

  /** How many tasks this holds anything for (starting, or a stop kept). */
  get size(): number {
    return new Set([...this.starting, ...this.early.keys()]).size;
  }
}
