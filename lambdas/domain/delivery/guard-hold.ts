import type { Lane } from '../../shared/names.ts';
import { type HoldCause, heldEntry, markHeld } from '../guard/hold.ts';
import { holdFor, suspendedByGuard } from '../guard/state.ts';
import type { ApiKey } from '../keys/api-key.ts';
import type { MessageRecord, SendJob } from '../message.ts';
import type { Clock, HeldJobs, MessageStore } from '../ports.ts';
import { rewrite } from '../versioned-write.ts';
import type { WebhookPublisher } from '../webhooks/ports.ts';
import { publishChanges } from '../webhooks/produce.ts';

/**
 * The sender's re-check of the abuse guard (issue 13): mail queued before the guard tripped, or
 * before an operator suspended its key, is held rather than sent. The key is read anyway (cached
 * briefly), and its item carries the guard's state of the key and of its tenant (guard/state.ts).
 */

/** Why a message of an operator-suspended key is held: there is no guard decision to quote. */
export const OPERATOR_SUSPENSION: HoldCause = {
  action: 'suspendKey',
  signal: 'operator',
  reason: 'the API key was suspended by an operator',
};

/**
 * What holds mail of `lane` sent with `key` now; undefined: send it. A suspended key holds all
 * its mail, whoever suspended it; otherwise the tenant's hold of the lane. A key that is gone
 * (deleted) holds nothing: the message was accepted, and only the guard's state can hold it.
 */
export function senderHold(key: ApiKey | undefined, lane: Lane, now: Date): HoldCause | undefined {
  if (key === undefined) return undefined;
  if (key.status === 'suspended') return suspendedByGuard(key) ?? OPERATOR_SUSPENSION;
  return holdFor(key.guard, lane, now);
}

export interface HoldDeps {
  readonly messages: Pick<MessageStore, 'get' | 'update'>;
  readonly held: HeldJobs;
  readonly clock: Clock;
  /** Told message.held once the record is written held (issue 14). Absent: nothing is published. */
  readonly webhooks?: WebhookPublisher;
}

/**
 * Holds the queued message of `job`: keeps the job first, then writes the record held, so a held
 * record always has its job to release (keeping twice changes nothing, so a retry after a failed
 * record write is safe). Returns the held record, or undefined when the message is not queued (an
 * attempt claimed it, it was sent, or it is held already): the caller goes on as for any delivery,
 * whose claim then acknowledges a duplicate or waits for the live attempt. Throws when either
 * write fails: the queue message must come back, not be acknowledged.
 */
export async function holdJob(
  deps: HoldDeps,
  job: SendJob,
  cause: HoldCause,
): Promise<MessageRecord | undefined> {
  const now = deps.clock();
  const record = await deps.messages.get(job.id);
  const candidate = record && markHeld(record, cause, now);
  if (record === undefined || candidate?.hold === undefined) return undefined;
  const entry = heldEntry(candidate, candidate.hold);
  await deps.held.keep(entry, job);
  let latest = record;
  const written = await rewrite(deps.messages, record, (current) => {
    latest = current;
    return markHeld(current, cause, now);
  });
  if (written) {
    await publishChanges(deps.webhooks, [written]);
    // A release of the message may have removed the entry between the keep above (a no-op while
    // its old entry was there) and this write, after it last looked for a hold: the record is held
    // now, so its entry and job must be there, or it could never be released.
    if ((await deps.held.get(entry.tenant, entry.id)) === undefined) await deps.held.keep(entry, job);
    return written.after;
  }
  // Another attempt took the message between the read and the write (a duplicate delivery): the
  // entry kept would list a message that is not held. One that got held meanwhile keeps it.
  if (latest.phase !== 'held') await deps.held.remove(entry);
  return undefined;
}
