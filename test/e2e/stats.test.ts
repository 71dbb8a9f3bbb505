import { describe, expect, it } from 'vitest';
import type { StatsView } from '../../lambdas/domain/reporting/stats.ts';
import { statsRow } from '../support/builders.ts';
import { seedApiKey } from '../support/e2e-keys.ts';
import { receipt, type TestBaton, waitFor, withTestBaton } from '../support/local-baton.ts';

// Issue 5 part 6 over HTTP against local mode: the api counts what it accepts, the sender what SES
// took, the feedback function what the SES stand-in's mailbox simulator reports (through the real
// SNS → SQS → feedback path), and GET /v1/stats reads it back for the key's tenant only.

let baton: TestBaton;
/** The UTC day the messages were sent; the range asked for runs to "today" at the end of the test. */
let firstDay: string;

const today = () => new Date().toISOString().slice(0, 10);

withTestBaton((started) => {
  baton = started;
  firstDay = today();
});

async function stats(query: string, auth?: string): Promise<{ status: number; body: StatsView }> {
  const res = await baton.request(`/v1/stats${query}`, auth === undefined ? {} : { auth });
  return { status: res.status, body: (await res.json()) as StatsView };
}

describe('GET /v1/stats in local mode', () => {
  it('counts a delivery, a bounce and a complaint from the mailbox simulator, with their rates', async () => {
    // Prepare
    for (const to of ['success', 'bounce', 'complaint']) {
      const res = await baton.request('/v1/messages', { json: receipt(`${to}@simulator.amazonses.com`) });
      expect(res.status).toBe(202);
    }

    // Act: the counters are written when each function's batch ends, so wait for the last of them.
    const { body } = await waitFor('the feedback to be counted', async () => {
      const answer = await stats(`?from=${firstDay}&to=${today()}`);
      const t = answer.body.totals;
      return t.sent === 3 && t.delivered === 2 && t.bounced === 1 && t.complained === 1 ? answer : undefined;
    });

    // Assess
    expect(body.totals).toEqual(
      statsRow({
        accepted: 3,
        sent: 3,
        delivered: 2,
        bounced: 1,
        complained: 1,
        bounceRate: 0.3333,
        complaintRate: 0.3333,
      }),
    );
    expect(body.days.at(-1)?.date).toBe(today());
  });

  it('answers the week ending today by default, today included', async () => {
    // Act
    const { status, body } = await stats('');

    // Assess
    expect(status).toBe(200);
    expect([body.to, body.days.length]).toEqual([today(), 7]);
    expect(body.days.reduce((sum, d) => sum + d.accepted, 0)).toBe(3);
  });

  it('shows another tenant’s key only zeros', async () => {
    // Prepare
    const other = await seedApiKey(baton, { tenant: 'e2e-stats-other' });

    // Act
    const { status, body } = await stats(`?from=${firstDay}&to=${today()}`, other);

    // Assess
    expect(status).toBe(200);
    expect(body.totals).toEqual(statsRow());
    expect(body.days.every((d) => d.accepted === 0 && d.sent === 0)).toBe(true);
  });

  it('answers a date that does not exist with a 422 problem naming the parameter', async () => {
    // Act
    const res = await baton.request('/v1/stats?from=2025-02-30');

    // Assess
    expect([res.status, res.headers.get('content-type')]).toEqual([422, 'application/problem+json']);
    expect(((await res.json()) as { errors: unknown }).errors).toEqual([
      { path: 'from', message: 'must be a calendar date YYYY-MM-DD' },
    ]);
  });
});
