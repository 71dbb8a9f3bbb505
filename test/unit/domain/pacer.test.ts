import { afterEach, describe, expect, it, vi } from 'vitest';
import { Pacer, pacedMailer, steadyClock } from '../../../lambdas/domain/delivery/pacer.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { T0 } from '../../support/builders.ts';
import { FakeMailer, type TestClock, testClock } from '../../support/fakes.ts';

/** A sleep that moves the test clock instead of waiting, and remembers every wait it was asked for. */
function fakeSleep(clock: TestClock) {
  const waits: number[] = [];
  const sleep = async (ms: number): Promise<void> => {
    waits.push(ms);
    clock.advance(ms);
  };
  return { sleep, waits };
}

const elapsedMs = (clock: TestClock): number => clock().getTime() - Date.parse(T0);

const mail = (to: string) => ({
  raw: new TextEncoder().encode(`raw:${to}`),
  from: 'orders@example.com',
  to: [to],
  cc: [],
  bcc: [],
  tags: {},
});

describe('Pacer', () => {
  it('spaces N sends at rate r over (N - 1) / r seconds, the first at once', async () => {
    // Prepare
    const clock = testClock(T0);
    const { sleep, waits } = fakeSleep(clock);
    const pacer = new Pacer(4, clock, sleep);
    const startedAt: number[] = [];

    // Act
    for (let i = 0; i < 9; i++) {
      await pacer.acquire();
      startedAt.push(elapsedMs(clock));
    }

    // Assess
    expect(startedAt).toEqual([0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000]);
    expect(elapsedMs(clock)).toBe(((9 - 1) / 4) * 1000);
    expect(waits).toEqual([250, 250, 250, 250, 250, 250, 250, 250]);
  });

  it('spaces concurrent callers too: each takes the next free slot before it waits', async () => {
    // Prepare
    const clock = testClock(T0);
    const asked: number[] = [];
    const pacer = new Pacer(5, clock, async (ms) => {
      asked.push(ms);
    });

    // Act
    await Promise.all(Array.from({ length: 5 }, () => pacer.acquire()));

    // Assess
    // The clock does not move while they queue: slots 0, 200, 400, 600 and 800 ms from now.
    expect(asked).toEqual([200, 400, 600, 800]);
  });

  it('keeps a fractional per-instance rate (a lane rate divided by its concurrency)', async () => {
    // Prepare
    const clock = testClock(T0);
    const { sleep } = fakeSleep(clock);
    // 14 sends per second shared by 4 instances: 3.5 per second each.
    const pacer = new Pacer(14 / 4, clock, sleep);

    // Act
    for (let i = 0; i < 8; i++) await pacer.acquire();

    // Assess
    expect(elapsedMs(clock)).toBe(2000);
  });

  it('does not bank idle time beyond one send: after a pause the second send waits a full interval', async () => {
    // Prepare
    const clock = testClock(T0);
    const { sleep, waits } = fakeSleep(clock);
    const pacer = new Pacer(2, clock, sleep);
    await pacer.acquire();
    clock.advance(10_000);

    // Act
    await pacer.acquire();
    const afterIdle = elapsedMs(clock);
    await pacer.acquire();
    await pacer.acquire();

    // Assess
    expect(afterIdle).toBe(10_000);
    expect(waits).toEqual([500, 500]);
    expect(elapsedMs(clock)).toBe(11_000);
  });

  it('does not wait when the caller is already slower than the rate', async () => {
    // Prepare
    const clock = testClock(T0);
    const { sleep, waits } = fakeSleep(clock);
    const pacer = new Pacer(10, clock, sleep);

    // Act
    for (let i = 0; i < 3; i++) {
      await pacer.acquire();
      clock.advance(150);
    }

    // Assess
    expect(waits).toEqual([]);
  });

  it('counts recipients, not calls: after a send to n recipients the next waits n / rate', async () => {
    // Prepare
    const clock = testClock(T0);
    const { sleep } = fakeSleep(clock);
    const pacer = new Pacer(10, clock, sleep);
    const startedAt: number[] = [];

    // Act
    for (const recipients of [5, 5, 1, 1]) {
      await pacer.acquire(recipients);
      startedAt.push(elapsedMs(clock));
    }

    // Assess
    expect(startedAt).toEqual([0, 500, 1000, 1100]);
  });

  it('holds a message larger than one second’s budget until the 60 s window has room for it', async () => {
    // Prepare: 1 recipient per second, so 60 per window.
    const clock = testClock(T0);
    const { sleep } = fakeSleep(clock);
    const pacer = new Pacer(1, clock, sleep);
    const startedAt: number[] = [];

    // Act
    for (const recipients of [50, 1, 10, 1]) {
      await pacer.acquire(recipients);
      startedAt.push(elapsedMs(clock));
    }

    // Assess: the 10 fits only once the 50 sent at 0 s has left the window (51 + 10 > 60).
    expect(startedAt).toEqual([0, 50_000, 60_000, 70_000]);
  });

  it('sends a message larger than the whole window’s budget alone, then nothing for its recipients / rate', async () => {
    // Prepare: 0.15 recipients per second (the sandbox's broadcast lane over two senders): 9 per window.
    const clock = testClock(T0);
    const { sleep } = fakeSleep(clock);
    const pacer = new Pacer(0.15, clock, sleep);
    const startedAt: number[] = [];

    // Act
    for (const recipients of [1, 50, 50, 1]) {
      await pacer.acquire(recipients);
      startedAt.push(elapsedMs(clock));
    }

    // Assess (whole ms, rounded up): the first 50 waits for an empty window; each 50 then costs 50 / 0.15 = 333.3 s.
    expect(startedAt).toEqual([0, 60_000, 393_334, 726_667]);
  });

  it('says how long a send would wait without booking it', async () => {
    // Prepare
    const clock = testClock(T0);
    const { sleep } = fakeSleep(clock);
    const pacer = new Pacer(2, clock, sleep);
    await pacer.acquire(4);

    // Act
    const first = pacer.delayFor(50);
    const again = pacer.delayFor(1);

    // Assess
    expect([first, again]).toEqual([2000, 2000]);
    clock.advance(2000);
    expect(pacer.delayFor(1)).toBe(0);
  });

  it.each([0, -1, Number.NaN])('refuses a send rate of %s', (rate) => {
    // Prepare
    const clock = testClock(T0);

    // Act
    const build = () => new Pacer(rate, clock);

    // Assess
    expect(build).toThrow(new RangeError(`a send rate must be positive, got ${rate}`));
  });
});

describe('steadyClock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps a pacer’s count when the wall clock steps forward', async () => {
    // Prepare: a sender at 2.1 recipients/s has just sent 100 (its window holds 126).
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse(T0) });
    const pacer = new Pacer(2.1, steadyClock, async () => undefined);
    await pacer.acquire(50);
    await pacer.acquire(50);

    // Act: the system clock steps a minute ahead (an NTP correction); no time has passed.
    vi.setSystemTime(Date.parse(T0) + 60_000);

    // Assess: the next 50 still wait for the window, about 60 s less the few ms the test took.
    expect(pacer.delayFor(50)).toBeGreaterThan(50_000);
  });

  it('reads close to the wall clock', () => {
    expect(Math.abs(steadyClock().getTime() - Date.now())).toBeLessThan(1_000);
  });
});

describe('pacedMailer', () => {
  it('waits its turn before each send and passes the mail and SES id through', async () => {
    // Prepare
    const clock = testClock(T0);
    const { sleep } = fakeSleep(clock);
    const inner = new FakeMailer().willAnswer('ses-a', 'ses-b', 'ses-c');
    const startedAt: number[] = [];
    const timed = {
      async send(m: Parameters<FakeMailer['send']>[0]) {
        startedAt.push(elapsedMs(clock));
        return inner.send(m);
      },
    };
    const mailer = pacedMailer(timed, new Pacer(10, clock, sleep));

    // Act
    const ids = [
      await mailer.send(mail('a@example.org')),
      await mailer.send(mail('b@example.org')),
      await mailer.send(mail('c@example.org')),
    ];

    // Assess
    expect(ids).toEqual(['ses-a', 'ses-b', 'ses-c']);
    expect(startedAt).toEqual([0, 100, 200]);
    expect(inner.sent.map((m) => m.to)).toEqual([['a@example.org'], ['b@example.org'], ['c@example.org']]);
  });

  it('counts a send SES refused against the rate, and passes the error through', async () => {
    // Prepare
    const clock = testClock(T0);
    const { sleep, waits } = fakeSleep(clock);
    const throttled = new TransientError('SES is unavailable or throttling (TooManyRequestsException)');
    const inner = new FakeMailer().willAnswer(throttled);
    const mailer = pacedMailer(inner, new Pacer(10, clock, sleep));

    // Act
    const first = await mailer.send(mail('a@example.org')).catch((error: unknown) => error);
    const second = await mailer.send(mail('a@example.org'));

    // Assess
    expect(first).toBe(throttled);
    expect(second).toBe('ses-1');
    expect(waits).toEqual([100]);
    expect(inner.attempts).toHaveLength(2);
    expect(inner.sent).toHaveLength(1);
  });
});
