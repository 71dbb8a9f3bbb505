import * as z from 'zod/mini';
import { fail } from '../problem.ts';
import { issueErrors } from '../request-issues.ts';
import { utcDay } from '../send/rate-limit.ts';
import { addDays, DEFAULT_STATS_DAYS, daysBetween, MAX_STATS_DAYS, type StatsRange } from './stats.ts';

/**
 * The `GET /v1/stats` query, checked with the zod schema the OpenAPI document is generated from
 * (issue 15). Apart from stats.ts, which the senders and the feedback function bundle without zod.
 */

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const NOT_A_DATE = 'must be a calendar date YYYY-MM-DD';

const calendarDate = z.string(NOT_A_DATE).check(
  z.regex(DATE, NOT_A_DATE),
  z.refine((v: string) => !DATE.test(v) || calendarDay(v) !== undefined, NOT_A_DATE),
);

/** `?from=YYYY-MM-DD&to=YYYY-MM-DD`, both optional; an unknown parameter is refused. */
export const STATS_QUERY = z.strictObject({ from: z.optional(calendarDate), to: z.optional(calendarDate) });

/**
 * The days a `GET /v1/stats` query asks for. `to` defaults to today (UTC), `from` to six days
 * before `to`. Fails with a 422 problem naming each failing parameter: a date that is not a real
 * calendar day, `from` after `to`, a range longer than {@link MAX_STATS_DAYS} days, or a parameter
 * this route does not know (a typo should not silently return a default week).
 */
export function statsRange(query: Readonly<Record<string, string | undefined>>, now: Date): StatsRange {
  const parsed = STATS_QUERY.safeParse(query);
  const { unknown, fields } = parsed.success
    ? { unknown: [], fields: [] }
    : issueErrors(parsed.error.issues, 'unknown query parameter');
  const bad = (name: string) => fields.some((e) => e.path === name);
  const errors = [
    ...unknown,
    ...fields.filter((e) => e.path === 'to'),
    ...fields.filter((e) => e.path === 'from'),
  ];
  const to = bad('to') ? undefined : (query.to ?? utcDay(now));
  const from = bad('from')
    ? undefined
    : (query.from ?? (to === undefined ? undefined : addDays(to, 1 - DEFAULT_STATS_DAYS)));
  if (from !== undefined && to !== undefined) {
    if (from > to) {
      errors.push({ path: 'from', message: `must not be after to (${to})` });
    } else if (daysBetween(from, to) + 1 > MAX_STATS_DAYS) {
      errors.push({ path: 'from', message: `the range may span at most ${MAX_STATS_DAYS} days` });
    }
  }
  if (errors.length > 0 || from === undefined || to === undefined) {
    fail('invalid_request', 'The statistics query is not valid.', errors);
  }
  const days: string[] = [];
  for (let day = from; day <= to; day = addDays(day, 1)) days.push(day);
  return { from, to, days };
}

/** `YYYY-MM-DD` when it names a real day (no 2025-02-30), else undefined. */
function calendarDay(value: string): string | undefined {
  if (!DATE.test(value)) return undefined;
  const t = Date.parse(`${value}T00:00:00.000Z`);
  return !Number.isNaN(t) && utcDay(new Date(t)) === value ? value : undefined;
}
