/**
 * The coordinator side's calls in flight on a link, so a listener's close() can give them a grace period to
 * answer before the link goes away.
 */
export class CallsInFlight {
  private count = 0;
  private idle: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** Runs an async call, counted until it settles (its failure is the call's own business, not this one's). */
  track(work: () => Promise<void>): void {
    this.count++;
    void work()
      .catch(() => undefined)
      .finally(() => {
        if (--this.count === 0) {
          const waiting = this.idle;
          this.idle = [];
          waiting.forEach((wake) => wake());
        }
      });
  }

  /** Resolves when no call is in flight, or after `graceMs`, whichever comes first. */
  async settle(graceMs: number): Promise<void> {
    if (this.count === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
