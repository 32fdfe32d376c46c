import type { AgentResult } from './strategy.js';

/** One attempt of one round, while its results come in. */
export class OpenRound {
  readonly results = new Map<string, AgentResult>();
  readonly gone = new Set<string>();
  /** Assigned agents that declined their task: the round does not wait for them. */
  readonly declined = new Set<string>();
  readonly done: Promise<void>;
  private finish!: () => void;
  private timer: NodeJS.Timeout;
  settled = false;

  constructor(
    readonly round: number,
    readonly attempt: number,
    readonly version: number,
    readonly assigned: Map<string, bigint[]>,
    readonly quorum: number,
    deadlineMs: number,
  ) {
    this.done = new Promise((resolve) => (this.finish = resolve));
    this.timer = setTimeout(() => this.settle(), deadlineMs);
  }

  settle(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.finish();
  }

  /** Closes the round as soon as its outcome is decided. */
  check(): void {
    const pending = this.assigned.size - this.results.size - this.gone.size - this.declined.size;
    if (this.results.size >= this.quorum || pending === 0 || this.results.size + pending < this.quorum) this.settle();
  }

  /** Whether the agent was asked in this attempt and has neither answered nor declined yet. */
  awaits(agentId: string): boolean {
    return this.assigned.has(agentId) && !this.results.has(agentId) && !this.declined.has(agentId);
  }
}
