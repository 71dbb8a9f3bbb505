import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock, IdempotencyStore } from '../ports.ts';
import { fail, ProblemError, problem } from '../problem.ts';

/** DESIGN §2: 1–255 printable ASCII characters. */
export const KEY_FORMAT = /^[\x20-\x7e]{1,255}$/;
const TTL_SECONDS = 24 * 60 * 60;
/** Longer than the api function's 10 s timeout: a holder past it has died. */
const LOCK_MS = 15_000;

export interface Reply {
  readonly status: number;
  readonly body: unknown;
  /** Extra response headers (not kept for replay). */
  readonly headers?: Readonly<Record<string, string>>;
  /** True when this is the stored first response, not a new one. */
  readonly replayed?: boolean;
  /**
   * True when some parts of the reply are answers a retry could change (a 207 whose messages
   * include 429 or 5xx problems) and the others are final: the reply is kept, and a repeat runs
   * again with it as `previous`, redoing only those parts.
   */
  readonly partial?: boolean;
}

/** A kept response, as `run` gets it back on a repeat of a partial reply. */
export interface KeptReply {
  readonly status: number;
  readonly body: unknown;
}

/** Answers a retry could change (5xx, 429): never kept as final. */
export function retryMayChange(status: number): boolean {
  return status >= 500 || status === 429;
}

export interface IdempotencyDeps {
  readonly store: IdempotencyStore;
  readonly clock: Clock;
  /** Told when a reply could not be kept for replay (the reply itself is still answered). */
  readonly onKeepFailed?: (error: unknown) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  /** How long a repeat waits for the first request to finish before answering 409. */
  readonly waitMs?: number;
  /**
   * How long a holder keeps the key before a repeat may take it over, believing it dead: longer
   * than the caller can take (LOCK_MS is past the api function's 10 s timeout). A caller with no
   * such bound (the SMTP server) gives its own, or a slow first run and its repeat both record.
   */
  readonly lockMs?: number;
}

export interface IdempotencyScope {
  readonly tenant: string;
  readonly route: string;
  readonly key: string;
  readonly body: unknown;
}

export function checkIdempotencyKey(value: string): void {
  if (!KEY_FORMAT.test(value)) {
    fail('bad_request', 'The Idempotency-Key header must be 1 to 255 printable ASCII characters.');
  }
}

/**
 * Runs `run` once per (tenant, route, Idempotency-Key) within 24 h. A repeat with the same body
 * gets the first response; with another body, 409. A repeat that races the first waits for it
 * and then replays its response, so the message is enqueued once. Answers that a retry could
 * change (5xx, 429) are not kept: the key is released and the next attempt runs again. A reply
 * that is only partly such (`Reply.partial`) keeps its final parts: a repeat takes the key back
 * and `run` gets the kept reply as `previous`, to redo only the rest (each message is queued
 * once, and the transient ones get a real retry).
 */
export async function idempotent(
  deps: IdempotencyDeps,
  scope: IdempotencyScope,
  run: (previous?: KeptReply) => Promise<Reply>,
): Promise<Reply> {
  const pk = `idem#${scope.tenant}#${scope.route}#${sha256(scope.key)}`;
  const bodyHash = sha256(canonicalJson(scope.body));
  const wait = deps.sleep ?? sleep;
  const deadline = deps.clock().getTime() + (deps.waitMs ?? 5_000);
  const owner = randomUUID();
  const lockMs = deps.lockMs ?? LOCK_MS;

  for (;;) {
    const now = deps.clock().getTime();
    const nowSeconds = Math.floor(now / 1000);
    const fresh = await deps.store.begin(
      {
        pk,
        bodyHash,
        state: 'in_progress',
        lockUntil: now + lockMs,
        expiresAt: nowSeconds + TTL_SECONDS,
        owner,
      },
      nowSeconds,
    );
    if (fresh) return runAndKeep(deps, pk, run, undefined);

    const existing = await deps.store.get(pk);
    if (existing) {
      if (existing.bodyHash !== bodyHash) {
        fail(
          'idempotency_conflict',
          'This Idempotency-Key was used with a different request body in the last 24 hours.',
        );
      }
      if (existing.state === 'done' && existing.response) return { ...existing.response, replayed: true };
      if (existing.state === 'partial' && existing.response && existing.owner !== undefined) {
        if (await deps.store.resume(pk, existing.owner, now + lockMs, owner)) {
          return runAndKeep(deps, pk, run, existing.response);
        }
        // Another repeat resumed it first, or ours landed and only its answer was lost: look again.
        if (deps.clock().getTime() <= deadline) continue;
      }
      // Our own write: it landed but its answer was lost, and the SDK's retry hit the condition.
      if (existing.state === 'in_progress' && existing.owner === owner) {
        return runAndKeep(deps, pk, run, existing.response);
      }
      if (
        existing.state === 'in_progress' &&
        existing.lockUntil < now &&
        (await deps.store.takeOver(pk, existing.lockUntil, now + lockMs, owner))
      ) {
        // A resumed holder that died leaves the partial reply it started from: redo from there.
        return runAndKeep(deps, pk, run, existing.response);
      }
    }
    if (deps.clock().getTime() > deadline) {
      throw new ProblemError(
        problem(
          'idempotency_in_progress',
          'A request with this Idempotency-Key is still being processed; retry shortly.',
        ),
        { 'retry-after': '1' },
      );
    }
    await wait(100);
  }
}

async function runAndKeep(
  deps: IdempotencyDeps,
  pk: string,
  run: (previous?: KeptReply) => Promise<Reply>,
  previous: KeptReply | undefined,
): Promise<Reply> {
  let reply: Reply;
  try {
    reply = await run(previous);
  } catch (error) {
    const status = error instanceof ProblemError ? error.problem.status : 500;
    if (previous !== undefined) {
      // The kept parts are final (their messages are queued): keep them for the next repeat.
      await deps.store.complete(pk, previous, true);
    } else if (error instanceof ProblemError && !retryMayChange(status)) {
      await deps.store.complete(pk, { status, body: error.problem });
    } else {
      await deps.store.release(pk);
    }
    throw error;
  }
  try {
    const kept = { status: reply.status, body: reply.body };
    if (reply.partial) await deps.store.complete(pk, kept, true);
    else if (!retryMayChange(reply.status)) await deps.store.complete(pk, kept);
    else if (previous !== undefined) await deps.store.complete(pk, previous, true);
    else await deps.store.release(pk);
  } catch (error) {
    // The work is done (a message may be queued): answering an error now would make the client
    // retry and send it twice. The key stays locked and lapses; a repeat in between gets 409.
    deps.onKeepFailed?.(error);
  }
  return reply;
}

function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/**
 * JSON with object keys sorted, so the same body in another key order is the same body.
 * Iterative: a hostile nesting depth must not exhaust the call stack (JSON.parse accepts depths
 * that a recursive walk, or JSON.stringify with a replacer, cannot handle). One frame per open
 * array or object, none per item: the body is hashed before it is validated, and a 6 MB array of
 * three million items must cost a fraction of the function's 10 s, not all of it.
 */
export function canonicalJson(root: unknown): string {
  interface Open {
    readonly items: readonly unknown[];
    /** The sorted keys of an object, whose values `items` holds in the same order; absent for an array. */
    readonly keys?: readonly string[];
    next: number;
  }
  const out: string[] = [];
  const open: Open[] = [];
  const write = (value: unknown): void => {
    if (Array.isArray(value)) {
      // An array of plain values is written natively, as JSON writes it (undefined as null): it
      // has nothing to sort.
      if (!value.some(isContainer)) out.push(JSON.stringify(value));
      else {
        out.push('[');
        open.push({ items: value, next: 0 });
      }
    } else if (typeof value === 'object' && value !== null) {
      const record = value as Record<string, unknown>;
      // Default sort: by UTF-16 code unit, as the hashes kept so far were computed.
      const keys = Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort();
      out.push('{');
      open.push({ items: keys.map((k) => record[k]), keys, next: 0 });
    } else {
      out.push(JSON.stringify(value) ?? 'null');
    }
  };
  write(root);
  for (let top = open.at(-1); top !== undefined; top = open.at(-1)) {
    if (top.next === top.items.length) {
      out.push(top.keys === undefined ? ']' : '}');
      open.pop();
      continue;
    }
    const i = top.next++;
    if (i > 0) out.push(',');
    if (top.keys !== undefined) out.push(`${JSON.stringify(top.keys[i])}:`);
    write(top.items[i]);
  }
  return out.join('');
}

function isContainer(value: unknown): boolean {
  return typeof value === 'object' && value !== null;
}
