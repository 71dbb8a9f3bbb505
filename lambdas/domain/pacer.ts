import { setTimeout as delay } from 'node:timers/promises';
import type { Clock, Mailer, OutboundMail } from './ports.ts';

/**
 * Spaces sends evenly at `ratePerSecond` within one sender instance. Each lane's instances share
 * the lane's part of the SES rate (its event source caps how many run), so an instance that keeps
 * to `laneRate / maxConcurrency` keeps the whole lane within its share without coordination: a
 * broadcast draining at full speed cannot take the transactional lane's part.
 */
export class Pacer {
  readonly #intervalMs: number;
  readonly #clock: Clock;
  readonly #sleep: (ms: number) => Promise<unknown>;
  #next = 0;

  constructor(ratePerSecond: number, clock: Clock, sleep: (ms: number) => Promise<unknown> = delay) {
    if (!(ratePerSecond > 0)) throw new RangeError(`a send rate must be positive, got ${ratePerSecond}`);
    this.#intervalMs = 1000 / ratePerSecond;
    this.#clock = clock;
    this.#sleep = sleep;
  }

  /** Resolves when the next send may start. */
  async acquire(): Promise<void> {
    const now = this.#clock().getTime();
    const at = Math.max(now, this.#next);
    this.#next = at + this.#intervalMs;
    if (at > now) await this.#sleep(at - now);
  }
}

/** A mailer that waits its turn before each send. */
export function pacedMailer(mailer: Mailer, pacer: Pacer): Mailer {
  return {
    async send(mail: OutboundMail): Promise<string> {
      await pacer.acquire();
      return mailer.send(mail);
    },
  };
}
