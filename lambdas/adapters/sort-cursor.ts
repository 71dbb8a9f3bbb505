import { InvalidCursorError } from '../shared/errors.ts';

/** A listing's cursor: the sort key of the last item returned, opaque to callers (base64url). */
export function encodeSortCursor(sort: string): string {
  return Buffer.from(sort, 'utf8').toString('base64url');
}

/**
 * The sort key a cursor names. InvalidCursorError unless the listing handed it out: the key starts
 * with the listing's `prefix`, is at most `maxBytes` long, and encodes back to the same cursor.
 */
export function decodeSortCursor(
  cursor: string,
  prefix: string,
  maxBytes = Number.POSITIVE_INFINITY,
): string {
  const sort = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!sort.startsWith(prefix) || Buffer.byteLength(sort) > maxBytes || encodeSortCursor(sort) !== cursor) {
    throw new InvalidCursorError('the cursor was not handed out by this listing');
  }
  return sort;
}
