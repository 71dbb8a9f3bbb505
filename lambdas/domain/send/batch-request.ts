import * as z from 'zod/mini';
import { fail } from '../problem.ts';

/** Messages in one `POST /v1/messages/batch`. */
export const MAX_BATCH = 100;

/**
 * The batch body's shape, the schema the OpenAPI document is generated from (issue 15). Each
 * message is checked on its own afterwards (accept.ts), so one bad message never fails the others:
 * here they are only a list.
 */
export const BATCH_REQUEST = z.strictObject({
  messages: z.array(z.unknown()).check(z.minLength(1), z.maxLength(MAX_BATCH)),
});

/** The `messages` of a batch body, after checking its shape (1 to 100 of them, nothing else). */
export function batchMessages(body: unknown): unknown[] {
  const parsed = BATCH_REQUEST.safeParse(body);
  if (parsed.success) return parsed.data.messages;
  const issues = parsed.error.issues;
  const extra = issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys : []));
  if (issues.some((i) => i.code === 'invalid_type')) {
    fail('invalid_request', 'The body must be {"messages": [ ... ]}.', [
      { path: 'messages', message: 'must be an array' },
    ]);
  }
  if (extra.length > 0) {
    fail('invalid_request', 'The body has unknown fields.', [
      { path: extra[0] ?? '', message: 'unknown field' },
    ]);
  }
  fail('invalid_request', `A batch holds 1 to ${MAX_BATCH} messages.`, [
    { path: 'messages', message: `must hold 1-${MAX_BATCH} messages` },
  ]);
}
