/**
 * Work in flight, counted, and a callback once none has run for a while: the moment a process
 * that waits allocates and does nothing, to tidy up after its work (the task launcher's
 * collection after a burst, the event-loop delay sampling that stops after the last task or
 * job). The timer never keeps the process alive; new work cancels the wait.
 */
export class AfterQuiet {
  private running = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly quietMs: number,
    private readonly onQuiet: () => void,
  ) {}

  /** Work started: the quiet moment is not here yet. */
  started(): void {
    this.running += 1;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Work ended: with none left running, onQuiet after quietMs unless more starts. */
  ended(): void {
    this.running = Math.max(0, this.running - 1);
    if (this.running > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onQuiet();
    }, this.quietMs);
    this.timer.unref();
  }
}
