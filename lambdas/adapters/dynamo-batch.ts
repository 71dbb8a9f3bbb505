import { setTimeout as sleep } from 'node:timers/promises';
import { BatchGetCommand, BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../shared/errors.ts';
import { rethrow } from './aws-errors.ts';

/** BatchGetItem takes at most 100 keys per call, BatchWriteItem 25 requests. */
const BATCH_GET_LIMIT = 100;
const BATCH_WRITE_LIMIT = 25;
/** DynamoDB may leave part of a batch unprocessed under load; it is asked again, backing off. */
const UNPROCESSED_RETRIES = 5;

type Item = Record<string, unknown>;

/**
 * Sends `pending` in chunks of `limit`, each chunk again and again with what DynamoDB left
 * unprocessed, until nothing is left or the retries run out (a TransientError: the caller's
 * batch is retried as a whole later).
 */
async function drain<T>(
  pending: readonly T[],
  limit: number,
  what: string,
  send: (chunk: T[]) => Promise<T[]>,
): Promise<void> {
  for (let i = 0; i < pending.length; i += limit) {
    let chunk = pending.slice(i, i + limit);
    for (let attempt = 0; chunk.length > 0; attempt++) {
      if (attempt > UNPROCESSED_RETRIES) throw new TransientError(`${what} left requests unprocessed`);
      if (attempt > 0) await sleep(25 * 2 ** attempt);
      try {
        chunk = await send(chunk);
      } catch (error) {
        rethrow(error, what);
      }
    }
  }
}

/**
 * Every item found under `keys` (in no particular order; missing keys are simply absent).
 * `projection` names the attributes to bring back, when not all are wanted.
 */
export async function batchGetAll(
  doc: DynamoDBDocumentClient,
  table: string,
  keys: readonly Item[],
  what: string,
  projection?: { readonly expression: string; readonly names: Readonly<Record<string, string>> },
): Promise<Item[]> {
  const items: Item[] = [];
  await drain(keys, BATCH_GET_LIMIT, what, async (chunk) => {
    const out = await doc.send(
      new BatchGetCommand({
        RequestItems: {
          [table]: {
            Keys: chunk,
            ...(projection
              ? { ProjectionExpression: projection.expression, ExpressionAttributeNames: projection.names }
              : {}),
          },
        },
      }),
    );
    items.push(...(out.Responses?.[table] ?? []));
    return out.UnprocessedKeys?.[table]?.Keys ?? [];
  });
  return items;
}

/** Puts every item (unconditionally: BatchWriteItem has no conditions). */
export async function batchPutAll(
  doc: DynamoDBDocumentClient,
  table: string,
  items: readonly object[],
  what: string,
): Promise<void> {
  const requests = items.map((item) => ({ PutRequest: { Item: item as Item } }));
  await drain(requests, BATCH_WRITE_LIMIT, what, async (chunk) => {
    const out = await doc.send(new BatchWriteCommand({ RequestItems: { [table]: chunk } }));
    return (out.UnprocessedItems?.[table] ?? []) as typeof chunk;
  });
}
