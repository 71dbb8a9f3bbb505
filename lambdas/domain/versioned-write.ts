import { ConflictError } from '../shared/errors.ts';
import type { MessageRecord } from './message.ts';
import type { MessageStore } from './ports.ts';

/** Writers that race one record (sender, feedback, erasure) rarely collide more than once or twice. */
export const WRITE_ATTEMPTS = 5;

export interface Rewritten {
  readonly before: MessageRecord;
  readonly after: MessageRecord;
}

/**
 * Writes `change(record)` under the record's version (and the claim token, when one is held).
 * When another writer got there first, the record is read again and the change applied to the
 * newer one: every transition only moves recipients up in rank, so re-applying it is safe.
 * `change` answers undefined when there is nothing (left) to write.
 *
 * Returns the record before and after the write, or undefined when nothing was written. A record
 * that disappeared meanwhile (its TTL ran out) is nothing to write too, unless `gone` says which
 * error that is for the caller.
 */
export async function rewrite(
  messages: Pick<MessageStore, 'get' | 'update'>,
  first: MessageRecord,
  change: (latest: MessageRecord) => MessageRecord | undefined,
  options: { readonly claimToken?: string; readonly gone?: (id: string) => Error } = {},
): Promise<Rewritten | undefined> {
  let record = first;
  for (let attempt = 1; ; attempt++) {
    const next = change(record);
    if (next === undefined) return undefined;
    try {
      await messages.update(next, record.version, options.claimToken);
      return { before: record, after: next };
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= WRITE_ATTEMPTS) throw error;
      const reread = await messages.get(first.id);
      if (reread === undefined) {
        if (options.gone) throw options.gone(first.id);
        return undefined;
      }
      record = reread;
    }
  }
}
