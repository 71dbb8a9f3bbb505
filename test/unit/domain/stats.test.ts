import { describe, expect, it } from 'vitest';
import {
  eventDay,
  feedbackCounts,
  MAX_STATS_DAYS,
  rate,
  StatTally,
  statsView,
} from '../../../lambdas/domain/reporting/stats.ts';
import { statsRange } from '../../../lambdas/domain/reporting/stats-query.ts';
import { feedbackEvent, statsRow, T0 } from '../../support/builders.ts';
import { InMemoryUsageStore } from '../../support/fakes.ts';
import { problemOfSync } from '../../support/problems.ts';

const now = new Date(T0); // 2025-03-01T12:00Z

describe('rate', () => {
  it('is 0 when nothing was sent, whatever else was counted', () => {
    // Act
    const rates = [rate(0, 0), rate(3, 0)];

    // Assess
    expect(rates).toEqual([0, 0]);
  });

  it('is a fraction of the recipients sent, rounded to 4 decimals', () => {
    // Act
    const rates = [rate(1, 3), rate(2, 3), rate(1, 1250), rate(1, 40_000), rate(4, 4)];

    // Assess
    expect(rates).toEqual([0.3333, 0.6667, 0.0008, 0, 1]);
  });
});

describe('statsRange', () => {
  it('defaults to the week ending today (UTC)', () => {
    // Act
    const range = statsRange({}, now);

    // Assess
    expect(range).toEqual({
      from: '2025-02-23',
      to: '2025-03-01',
      days: [
        '2025-02-23',
        '2025-02-24',
        '2025-02-25',
        '2025-02-26',
        '2025-02-27',
        '2025-02-28',
        '2025-03-01',
      ],
    });
  });

  it('takes today as the UTC day, not the local one', () => {
    // Act
    const range = statsRange({}, new Date('2025-03-01T23:59:59.999Z'));

    // Assess
    expect([range.from, range.to]).toEqual(['2025-02-23', '2025-03-01']);
  });

  it('counts back six days from a given to', () => {
    // Act
    const range = statsRange({ to: '2025-01-03' }, now);

    // Assess
    expect([range.from, range.to, range.days.length]).toEqual(['2024-12-28', '2025-01-03', 7]);
  });

  it('runs a given from up to today', () => {
    // Act
    const range = statsRange({ from: '2025-02-27' }, now);

    // Assess
    expect(range.days).toEqual(['2025-02-27', '2025-02-28', '2025-03-01']);
  });

  it('includes both ends, through a leap day', () => {
    // Act
    const range = statsRange({ from: '2024-02-28', to: '2024-03-01' }, now);

    // Assess
    expect(range.days).toEqual(['2024-02-28', '2024-02-29', '2024-03-01']);
  });

  it('answers a single day when from equals to', () => {
    // Act
    const range = statsRange({ from: '2025-03-01', to: '2025-03-01' }, now);

    // Assess
    expect(range).toEqual({ from: '2025-03-01', to: '2025-03-01', days: ['2025-03-01'] });
  });

  it(`accepts a range of exactly ${MAX_STATS_DAYS} days`, () => {
    // Act
    const range = statsRange({ from: '2024-12-01', to: '2025-03-03' }, now);

    // Assess
    expect([range.days.length, range.days[0], range.days.at(-1)]).toEqual([93, '2024-12-01', '2025-03-03']);
  });

  it('refuses a range one day longer than that, naming from', () => {
    // Act
    const p = problemOfSync(() => statsRange({ from: '2024-11-30', to: '2025-03-03' }, now));

    // Assess
    expect(p).toEqual({
      type: 'urn:baton:problem:invalid_request',
      title: 'Invalid request',
      status: 422,
      detail: 'The statistics query is not valid.',
      code: 'invalid_request',
      errors: [{ path: 'from', message: 'the range may span at most 93 days' }],
    });
  });

  it('refuses a from far back with the default to', () => {
    // Act
    const p = problemOfSync(() => statsRange({ from: '2024-01-01' }, now));

    // Assess
    expect(p.errors).toEqual([{ path: 'from', message: 'the range may span at most 93 days' }]);
  });

  it('refuses from after to', () => {
    // Act
    const p = problemOfSync(() => statsRange({ from: '2025-03-02', to: '2025-03-01' }, now));

    // Assess
    expect([p.status, p.errors]).toEqual([
      422,
      [{ path: 'from', message: 'must not be after to (2025-03-01)' }],
    ]);
  });

  it('refuses a from after today when to is left out', () => {
    // Act
    const p = problemOfSync(() => statsRange({ from: '2025-03-05' }, now));

    // Assess
    expect(p.errors).toEqual([{ path: 'from', message: 'must not be after to (2025-03-01)' }]);
  });

  it.each([
    ['2025-02-30', 'a day February does not have'],
    ['2025-02-29', 'a leap day in a common year'],
    ['2025-13-01', 'a thirteenth month'],
    ['2025-00-10', 'month zero'],
    ['2025-3-1', 'no leading zeros'],
    ['2025-03-01T00:00:00Z', 'a timestamp'],
    ['20250301', 'no dashes'],
    ['yesterday', 'a word'],
    ['', 'an empty value'],
  ])('refuses from=%s (%s)', (value) => {
    // Act
    const p = problemOfSync(() => statsRange({ from: value, to: '2025-03-01' }, now));

    // Assess
    expect([p.status, p.errors]).toEqual([
      422,
      [{ path: 'from', message: 'must be a calendar date YYYY-MM-DD' }],
    ]);
  });

  it('refuses a to that is not a calendar date', () => {
    // Act
    const p = problemOfSync(() => statsRange({ to: '2025-04-31' }, now));

    // Assess
    expect(p.errors).toEqual([{ path: 'to', message: 'must be a calendar date YYYY-MM-DD' }]);
  });

  it('names every failing parameter at once', () => {
    // Act
    const p = problemOfSync(() => statsRange({ from: 'x', to: 'y', form: '2025-03-01', limit: '5' }, now));

    // Assess
    expect(p.errors).toEqual([
      { path: 'form', message: 'unknown query parameter' },
      { path: 'limit', message: 'unknown query parameter' },
      { path: 'to', message: 'must be a calendar date YYYY-MM-DD' },
      { path: 'from', message: 'must be a calendar date YYYY-MM-DD' },
    ]);
  });

  it('refuses an unknown parameter even beside a valid range (a typo must not read the default week)', () => {
    // Act
    const p = problemOfSync(() => statsRange({ form: '2025-02-01', to: '2025-03-01' }, now));

    // Assess
    expect(p.errors).toEqual([{ path: 'form', message: 'unknown query parameter' }]);
  });
});

describe('statsView', () => {
  it('lists every day of the range, with zeros where nothing was counted, and the totals', () => {
    // Prepare
    const range = statsRange({ from: '2025-02-28', to: '2025-03-02' }, now);
    const found = new Map([
      ['2025-02-28', { accepted: 4, sent: 4, delivered: 3, bounced: 1 }],
      ['2025-03-02', { accepted: 2, rejected: 1, suppressed: 1, sent: 1, complained: 1, failed: 1 }],
    ]);

    // Act
    const view = statsView(range, found);

    // Assess
    expect(view).toEqual({
      from: '2025-02-28',
      to: '2025-03-02',
      days: [
        {
          date: '2025-02-28',
          accepted: 4,
          rejected: 0,
          suppressed: 0,
          sent: 4,
          delivered: 3,
          bounced: 1,
          complained: 0,
          failed: 0,
          bounceRate: 0.25,
          complaintRate: 0,
        },
        { date: '2025-03-01', ...statsRow() },
        {
          date: '2025-03-02',
          accepted: 2,
          rejected: 1,
          suppressed: 1,
          sent: 1,
          delivered: 0,
          bounced: 0,
          complained: 1,
          failed: 1,
          bounceRate: 0,
          complaintRate: 1,
        },
      ],
      totals: {
        accepted: 6,
        rejected: 1,
        suppressed: 1,
        sent: 5,
        delivered: 3,
        bounced: 1,
        complained: 1,
        failed: 1,
        bounceRate: 0.2,
        complaintRate: 0.2,
      },
    });
  });

  it('writes the counters in one fixed order: date, the eight counters, then the rates', () => {
    // Prepare
    const range = statsRange({ from: '2025-03-01', to: '2025-03-01' }, now);

    // Act
    const view = statsView(range, new Map([['2025-03-01', { failed: 2, accepted: 1 }]]));

    // Assess
    expect(Object.keys(view)).toEqual(['from', 'to', 'days', 'totals']);
    expect(Object.keys(view.days[0] ?? {})).toEqual([
      'date',
      'accepted',
      'rejected',
      'suppressed',
      'sent',
      'delivered',
      'bounced',
      'complained',
      'failed',
      'bounceRate',
      'complaintRate',
    ]);
    expect(Object.keys(view.totals)).toEqual(Object.keys(view.days[0] ?? {}).slice(1));
  });
});

describe('StatTally', () => {
  it('adds up a batch by tenant and day', () => {
    // Prepare
    const tally = new StatTally();

    // Act
    tally.add('shop', '2025-03-01', { sent: 1 });
    tally.add('shop', '2025-03-01', { sent: 2, failed: 1 });
    tally.add('shop', '2025-03-02', { sent: 1 });
    tally.add('blog', '2025-03-01', { suppressed: 1 });

    // Assess
    expect(tally.entries()).toEqual([
      { tenant: 'shop', day: '2025-03-01', counts: { sent: 3, failed: 1 } },
      { tenant: 'shop', day: '2025-03-02', counts: { sent: 1 } },
      { tenant: 'blog', day: '2025-03-01', counts: { suppressed: 1 } },
    ]);
  });

  it('leaves out zeros, and a tenant and day with nothing but zeros', () => {
    // Prepare
    const tally = new StatTally();

    // Act
    tally.add('shop', '2025-03-01', { bounced: 0 });
    tally.add('blog', '2025-03-01', { sent: 2, delivered: 0 });

    // Assess
    expect(tally.entries()).toEqual([{ tenant: 'blog', day: '2025-03-01', counts: { sent: 2 } }]);
  });

  it('flushes with one write per tenant and day, and is empty afterwards', async () => {
    // Prepare
    const tally = new StatTally();
    const usage = new InMemoryUsageStore();
    for (let i = 0; i < 10; i++) tally.add('shop', '2025-03-01', { sent: 1 });
    tally.add('blog', '2025-03-01', { delivered: 2 });

    // Act
    await tally.flush(usage);
    await tally.flush(usage);

    // Assess
    expect(usage.statWrites).toEqual([
      { tenant: 'shop', day: '2025-03-01', counts: { sent: 10 } },
      { tenant: 'blog', day: '2025-03-01', counts: { delivered: 2 } },
    ]);
    expect(tally.entries()).toEqual([]);
  });

  it('writes nothing for an empty batch', async () => {
    // Prepare
    const usage = new InMemoryUsageStore();

    // Act
    await new StatTally().flush(usage);

    // Assess
    expect(usage.statWrites).toEqual([]);
  });
});

describe('feedbackCounts', () => {
  const two = [{ address: 'ana@example.org' }, { address: 'bob@example.org' }];

  it('counts each delivered recipient', () => {
    // Act
    const counts = feedbackCounts(feedbackEvent({ kind: 'delivery', recipients: two }));

    // Assess
    expect(counts).toEqual({ delivered: 2 });
  });

  it('counts each recipient of a permanent bounce', () => {
    // Act
    const counts = feedbackCounts(
      feedbackEvent({ kind: 'bounce', bounceType: 'Permanent', bounceSubType: 'General', recipients: two }),
    );

    // Assess
    expect(counts).toEqual({ bounced: 2 });
  });

  it('counts a transient bounce too, its 4.x.x status included', () => {
    // Act
    const counts = feedbackCounts(
      feedbackEvent({
        kind: 'bounce',
        bounceType: 'Transient',
        bounceSubType: 'MailboxFull',
        recipients: [{ address: 'ana@example.org', status: '4.2.2', action: 'failed' }],
      }),
    );

    // Assess
    expect(counts).toEqual({ bounced: 1 });
  });

  it('does not count a recipient SES lists in a bounce as only delayed', () => {
    // Act
    const counts = feedbackCounts(
      feedbackEvent({
        kind: 'bounce',
        bounceType: 'Permanent',
        recipients: [
          { address: 'ana@example.org', status: '5.1.1', action: 'failed' },
          { address: 'bob@example.org', status: '4.4.7', action: 'failed' },
          { address: 'carl@example.org', action: 'delayed' },
        ],
      }),
    );

    // Assess
    expect(counts).toEqual({ bounced: 1 });
  });

  it('counts each complaining recipient', () => {
    // Act
    const counts = feedbackCounts(feedbackEvent({ kind: 'complaint', recipients: two }));

    // Assess
    expect(counts).toEqual({ complained: 2 });
  });

  it('fails the message, once, on a Reject or a Rendering Failure', () => {
    // Act
    const counts = [
      feedbackCounts(feedbackEvent({ kind: 'reject', recipients: two })),
      feedbackCounts(feedbackEvent({ kind: 'rendering_failure', recipients: two })),
    ];

    // Assess
    expect(counts).toEqual([{ failed: 1 }, { failed: 1 }]);
  });

  it.each(['send', 'delay', 'open', 'click', 'subscription'] as const)('counts nothing for %s', (kind) => {
    // Act
    const counts = feedbackCounts(feedbackEvent({ kind, recipients: two }));

    // Assess
    expect(counts).toEqual({});
  });
});

describe('eventDay', () => {
  it('is the UTC day the event happened, not the day it arrived', () => {
    // Act
    const day = eventDay('2025-02-28T23:59:30.000+00:00', new Date('2025-03-01T00:00:10.000Z'));

    // Assess
    expect(day).toBe('2025-02-28');
  });

  it('reads an offset timestamp in UTC', () => {
    // Act
    const day = eventDay('2025-03-01T01:30:00.000+02:00', now);

    // Assess
    expect(day).toBe('2025-02-28');
  });

  it('falls back to when the event arrived when its time cannot be read', () => {
    // Act
    const day = eventDay('not a time', new Date('2025-03-04T08:00:00.000Z'));

    // Assess
    expect(day).toBe('2025-03-04');
  });
});
