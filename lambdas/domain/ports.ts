import type { Lane } from '../shared/names.ts';
import type { ApiKey } from './api-key.ts';
import type { MessageRecord, SendJob } from './message.ts';
import type { Suppression } from './suppression.ts';

/**
 * What the domain needs from the outside world. Adapters implement these over AWS; tests pass
 * in-memory fakes. Keeping them here means domain code never imports an SDK.
 */

export interface ApiKeyReader {
  get(keyId: string): Promise<ApiKey | undefined>;
}

export type ClaimResult =
  | { readonly outcome: 'claimed'; readonly record: MessageRecord; readonly token: string }
  /** Already sent or finished: a duplicate delivery of the queue message; acknowledge it. */
  | { readonly outcome: 'done'; readonly record: MessageRecord }
  /** Another live attempt holds the claim: try again after it expires. */
  | { readonly outcome: 'busy'; readonly record: MessageRecord }
  | { readonly outcome: 'missing' };

export interface MessageStore {
  create(record: MessageRecord): Promise<void>;
  /** Writes new records with batched writes (fresh ids, so no existence check is needed). */
  createMany(records: readonly MessageRecord[]): Promise<void>;
  get(id: string): Promise<MessageRecord | undefined>;
  /** Finds the Baton message by the id SES gave it (identity notifications carry no tags). */
  findBySesMessageId(sesMessageId: string): Promise<MessageRecord | undefined>;
  /**
   * Takes the send claim: succeeds when the message is queued, or when a previous holder's claim
   * has expired (it died). Conditional on Baton's message id, never the SQS message id.
   */
  claim(id: string, now: Date, leaseMs: number): Promise<ClaimResult>;
  /** Gives a claim back early (a transient failure), so the retry need not wait for the lease. */
  release(id: string, token: string): Promise<void>;
  /**
   * Replaces the mutable part of the record if nobody else wrote since `expectedVersion` (and, with
   * a claim token, only while the claim is still ours). Throws ConflictError otherwise.
   */
  update(next: MessageRecord, expectedVersion: number, claimToken?: string): Promise<void>;
}

export interface SuppressionStore {
  /** One batched read; keys are normalised addresses; absent = not suppressed. */
  getMany(addresses: readonly string[]): Promise<Map<string, Suppression>>;
  get(address: string): Promise<Suppression | undefined>;
  /** Writes unless an equal or stronger suppression is there already. True when it wrote. */
  putIfStronger(s: Suppression): Promise<boolean>;
  put(s: Suppression): Promise<void>;
  delete(address: string): Promise<void>;
  list(limit: number, cursor?: string): Promise<{ items: Suppression[]; nextCursor: string | null }>;
}

export interface JobQueue {
  enqueue(lane: Lane, job: SendJob): Promise<void>;
  /**
   * Enqueues many jobs with as few requests as the queue allows (SQS SendMessageBatch). The
   * result has one entry per job, in order: undefined when queued, the error when not.
   */
  enqueueMany(
    items: ReadonlyArray<{ readonly lane: Lane; readonly job: SendJob }>,
  ): Promise<Array<Error | undefined>>;
}

export interface OutboundMail {
  readonly raw: Uint8Array;
  /** Envelope sender (the From address); SES uses the identity's MAIL FROM for bounces. */
  readonly from: string;
  readonly to: readonly string[];
  readonly cc: readonly string[];
  readonly bcc: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
}

export interface Mailer {
  /** Returns SES's message id. Throws TransientError, PermanentError or SendingPausedError. */
  send(mail: OutboundMail): Promise<string>;
}

export type Clock = () => Date;
