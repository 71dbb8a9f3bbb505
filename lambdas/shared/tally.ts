/**
 * Counts outcomes over a batch, for the one summary log line a handler writes per batch instead of
 * one line per message (CloudWatch Logs ingestion is billed per byte: a line per message was a
 * tenth of Baton's cost per message). Per-message lines stay available at DEBUG.
 */
export class Tally {
  #counts: Record<string, number> = {};

  add(outcome: string, n = 1): void {
    this.#counts[outcome] = (this.#counts[outcome] ?? 0) + n;
  }

  /** The counts so far, and a fresh start for the next batch. */
  drain(): Record<string, number> {
    const counts = this.#counts;
    this.#counts = {};
    return counts;
  }
}
