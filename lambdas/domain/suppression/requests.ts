import * as z from 'zod/mini';
import { fail } from '../problem.ts';
import { issueErrors } from '../request-issues.ts';
import { operatorSuppression, type Suppression } from './suppression.ts';

/**
 * The suppression routes' request body and query, checked with the zod schemas the OpenAPI document
 * is generated from (issue 15). Apart from suppression.ts, which the senders bundle without zod.
 */

export const DEFAULT_SUPPRESSION_PAGE = 50;
export const MAX_SUPPRESSION_PAGE = 1_000;
const MAX_DETAIL = 1_000;

const REASON_MESSAGE = 'must be "manual" or "unsubscribe"';
const DETAIL_MESSAGE = `must be a string of at most ${MAX_DETAIL} characters`;

/** `PUT /v1/suppressions/{address}`: `{"reason"?: "manual" | "unsubscribe", "detail"?: "..."}`. */
export const MANUAL_SUPPRESSION_REQUEST = z.strictObject({
  reason: z._default(z.nullish(z.enum(['manual', 'unsubscribe'], REASON_MESSAGE)), 'manual'),
  detail: z.optional(z.string(DETAIL_MESSAGE).check(z.maxLength(MAX_DETAIL, DETAIL_MESSAGE))),
});

/** `GET /v1/suppressions?limit=&cursor=`; other parameters are ignored. */
export const SUPPRESSION_LIST_QUERY = z.object({
  limit: z._default(
    z.pipe(
      // Digits only, as the document's `integer` says: not `0x10`, `1e2` or ` 5` (Number would take them).
      z.pipe(z.string().check(z.regex(/^\d+$/, 'must be 1-1000')), z.transform(Number)),
      z
        .int('must be 1-1000')
        .check(z.gte(1, 'must be 1-1000'), z.lte(MAX_SUPPRESSION_PAGE, 'must be 1-1000')),
    ),
    DEFAULT_SUPPRESSION_PAGE,
  ),
  cursor: z.optional(z.string()),
});

/** A tenant's own permanent entry, from a `PUT /v1/suppressions/{address}` body. */
export function manualSuppression(address: string, body: unknown, now: Date, tenant: string): Suppression {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    fail('invalid_request', 'The body must be a JSON object like {"reason": "manual", "detail": "..."}.');
  }
  const parsed = MANUAL_SUPPRESSION_REQUEST.safeParse(body);
  if (!parsed.success) {
    const { unknown, fields } = issueErrors(parsed.error.issues, 'unknown field');
    fail('invalid_request', 'The suppression is not valid.', [...fields, ...unknown]);
  }
  return operatorSuppression(
    address,
    parsed.data.reason ?? 'manual',
    parsed.data.detail ?? null,
    now,
    tenant,
  );
}

/** The page a `GET /v1/suppressions` query asks for. */
export function suppressionListQuery(query: Readonly<Record<string, string | undefined>>): {
  readonly limit: number;
  readonly cursor?: string;
} {
  const parsed = SUPPRESSION_LIST_QUERY.safeParse(query);
  if (!parsed.success) {
    fail('invalid_request', `limit must be an integer from 1 to ${MAX_SUPPRESSION_PAGE}.`, [
      { path: 'limit', message: 'must be 1-1000' },
    ]);
  }
  // An empty cursor is the first page, as no cursor is.
  return parsed.data.cursor
    ? { limit: parsed.data.limit, cursor: parsed.data.cursor }
    : { limit: parsed.data.limit };
}
