/**
 * A counting HTTP proxy in front of an emulator, for the handler probes: every AWS call a handler
 * process makes passes through it, and it keeps what the bill is made of.
 *
 * - DynamoDB: calls by operation and table, and the capacity units the emulator reports (the proxy
 *   asks for `ReturnConsumedCapacity: TOTAL` on every item call). A failed conditional write is
 *   billed one WRU, like DynamoDB bills it. dynalite reports no index capacity, so writes that set or
 *   change a KEYS_ONLY index key (`indexed`) add one WRU, removing it another (the proxy remembers
 *   each item's key as written by Put; an Update setting it is counted by the expression's names).
 * - SQS: billed requests, one per started 64 KB of payload (message bodies and attributes: request
 *   for sends, response for receives).
 * - SES v2, S3, SNS: calls.
 */
import type { IncomingMessage } from 'node:http';
import { startAwsProxy } from '../../local/emulators/aws-proxy.ts';
import type { WireUsage } from '../sections/types.ts';

const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);
const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);
const SQS_CHUNK = 64 * 1024;

export interface IndexedAttribute {
  readonly table: string;
  readonly attribute: string;
  readonly key: string;
}

type Json = Record<string, unknown>;

class Tally {
  calls: Record<string, number> = {};
  dynamoUnits: Record<string, { wru: number; rru: number }> = {};
  sqsBilled = 0;

  call(name: string): void {
    this.calls[name] = (this.calls[name] ?? 0) + 1;
  }

  units(table: string, op: string, kind: 'wru' | 'rru', n: number): void {
    const key = `${table} ${op}`;
    const entry = this.dynamoUnits[key] ?? { wru: 0, rru: 0 };
    entry[kind] += n;
    this.dynamoUnits[key] = entry;
  }

  usage(): WireUsage {
    const sum = (prefix: string) =>
      Object.entries(this.calls)
        .filter(([k]) => k.startsWith(prefix))
        .reduce((n, [, v]) => n + v, 0);
    const units = Object.values(this.dynamoUnits);
    return {
      calls: { ...this.calls },
      dynamoWru: units.reduce((n, u) => n + u.wru, 0),
      dynamoRru: units.reduce((n, u) => n + u.rru, 0),
      dynamoUnits: structuredClone(this.dynamoUnits),
      sqsBilled: this.sqsBilled,
      sesCalls: sum('SESv2 SendEmail'),
      snsPublishes: sum('SNS Publish'),
      s3Calls: sum('S3 '),
    };
  }
}

/** The difference `after - before` of two snapshots. */
export function wireDelta(after: WireUsage, before: WireUsage): WireUsage {
  const calls: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.calls)) {
    const d = v - (before.calls[k] ?? 0);
    if (d !== 0) calls[k] = d;
  }
  const dynamoUnits: Record<string, { wru: number; rru: number }> = {};
  for (const [k, v] of Object.entries(after.dynamoUnits)) {
    const b = before.dynamoUnits[k] ?? { wru: 0, rru: 0 };
    if (v.wru !== b.wru || v.rru !== b.rru) dynamoUnits[k] = { wru: v.wru - b.wru, rru: v.rru - b.rru };
  }
  return {
    calls,
    dynamoWru: after.dynamoWru - before.dynamoWru,
    dynamoRru: after.dynamoRru - before.dynamoRru,
    dynamoUnits,
    sqsBilled: after.sqsBilled - before.sqsBilled,
    sesCalls: after.sesCalls - before.sesCalls,
    snsPublishes: after.snsPublishes - before.snsPublishes,
    s3Calls: after.s3Calls - before.s3Calls,
  };
}

/** Sums usages (e.g. the invocations of one scenario). */
export function wireSum(usages: readonly WireUsage[]): WireUsage {
  const zero: WireUsage = {
    calls: {},
    dynamoWru: 0,
    dynamoRru: 0,
    dynamoUnits: {},
    sqsBilled: 0,
    sesCalls: 0,
    snsPublishes: 0,
    s3Calls: 0,
  };
  return usages.reduce<WireUsage>((acc, u) => {
    const calls = { ...acc.calls };
    for (const [k, v] of Object.entries(u.calls)) calls[k] = (calls[k] ?? 0) + v;
    const dynamoUnits = structuredClone(acc.dynamoUnits) as Record<string, { wru: number; rru: number }>;
    for (const [k, v] of Object.entries(u.dynamoUnits)) {
      const e = dynamoUnits[k] ?? { wru: 0, rru: 0 };
      dynamoUnits[k] = { wru: e.wru + v.wru, rru: e.rru + v.rru };
    }
    return {
      calls,
      dynamoWru: acc.dynamoWru + u.dynamoWru,
      dynamoRru: acc.dynamoRru + u.dynamoRru,
      dynamoUnits,
      sqsBilled: acc.sqsBilled + u.sqsBilled,
      sesCalls: acc.sesCalls + u.sesCalls,
      snsPublishes: acc.snsPublishes + u.snsPublishes,
      s3Calls: acc.s3Calls + u.s3Calls,
    };
  }, zero);
}

/** Capacity units in a DynamoDB answer: one ConsumedCapacity or a list of them. */
function consumed(answer: Json): { table: string; units: number }[] {
  const c = answer.ConsumedCapacity;
  const list = Array.isArray(c) ? c : c ? [c] : [];
  return list.map((x: Json) => ({ table: String(x.TableName ?? '-'), units: Number(x.CapacityUnits ?? 0) }));
}

function sqsPayload(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let bytes = 0;
  for (const m of messages as Json[]) {
    bytes += Buffer.byteLength(String(m.MessageBody ?? m.Body ?? ''));
    for (const [name, value] of Object.entries((m.MessageAttributes ?? {}) as Record<string, Json>)) {
      bytes += Buffer.byteLength(name) + Buffer.byteLength(String(value.StringValue ?? value.DataType ?? ''));
    }
  }
  return bytes;
}

export interface WireProxy {
  readonly endpoint: string;
  usage(): WireUsage;
  stop(): Promise<void>;
}

/**
 * Starts a proxy on 127.0.0.1 that forwards to `target` and counts calls. `service` names what is
 * behind it when the request does not say (`SESv2`, or `fauxqs` for SQS + SNS + S3).
 */
export async function startWireProxy(
  target: string,
  service: 'DynamoDB' | 'fauxqs' | 'SESv2',
  indexed: readonly IndexedAttribute[] = [],
): Promise<WireProxy> {
  const tally = new Tally();
  // Last written value of each indexed attribute, by table and item key.
  const indexValues = new Map<string, unknown>();

  const indexWrites = (table: string, item: Json | undefined): number => {
    let units = 0;
    for (const ix of indexed) {
      if (ix.table !== table || item === undefined) continue;
      const id = JSON.stringify(item[ix.key]);
      const before = indexValues.get(`${table}|${id}|${ix.attribute}`);
      const after = item[ix.attribute] === undefined ? undefined : JSON.stringify(item[ix.attribute]);
      if (before === after) continue;
      // Set: one index write; changed: delete + put; removed: one delete.
      units += before !== undefined && after !== undefined ? 2 : 1;
      indexValues.set(`${table}|${id}|${ix.attribute}`, after);
    }
    return units;
  };

  const account = (
    req: IncomingMessage,
    body: Json | undefined,
    status: number,
    answer: Json | undefined,
  ) => {
    const amzTarget = String(req.headers['x-amz-target'] ?? '');
    const op = amzTarget.slice(amzTarget.lastIndexOf('.') + 1);
    if (amzTarget.startsWith('DynamoDB')) {
      const table = String(
        body?.TableName ?? Object.keys((body?.RequestItems ?? {}) as Json).join(',') ?? '-',
      );
      tally.call(`DynamoDB ${op}`);
      const kind = WRITES.has(op) ? 'wru' : 'rru';
      if (status === 200 && answer) {
        for (const c of consumed(answer)) tally.units(c.table, op, kind, c.units);
        // Index writes dynalite leaves out.
        if (op === 'PutItem') {
          const ix = indexWrites(table, body?.Item as Json | undefined);
          if (ix > 0) tally.units(table, 'index write', 'wru', ix);
        } else if (op === 'BatchWriteItem') {
          for (const [t, requests] of Object.entries((body?.RequestItems ?? {}) as Record<string, Json[]>)) {
            for (const r of requests) {
              const ix = indexWrites(t, (r.PutRequest as Json | undefined)?.Item as Json | undefined);
              if (ix > 0) tally.units(t, 'index write', 'wru', ix);
            }
          }
        } else if (op === 'UpdateItem') {
          // The attributes the update expression names, directly or through #placeholders.
          const names = (body?.ExpressionAttributeNames ?? {}) as Record<string, string>;
          const expression = String(body?.UpdateExpression ?? '').replace(/#\w+/g, (p) => names[p] ?? p);
          for (const ix of indexed) {
            if (ix.table === table && new RegExp(`\\b${ix.attribute}\\b`).test(expression)) {
              tally.units(table, 'index write', 'wru', 1);
            }
          }
        }
      } else if (
        status === 400 &&
        WRITES.has(op) &&
        /ConditionalCheckFailed/.test(JSON.stringify(answer ?? {}))
      ) {
        // DynamoDB bills a write whose condition fails (one unit for an item ≤ 1 KB).
        tally.units(table, `${op} (condition failed)`, 'wru', 1);
      }
      return;
    }
    if (amzTarget.startsWith('AmazonSQS')) {
      // An empty receive is the event source polling an idle queue: a fixed monthly cost (the cost
      // section prices it apart), not a cost of the messages around it.
      if (op === 'ReceiveMessage' && status === 200 && !(answer?.Messages as unknown[] | undefined)?.length) {
        tally.call('SQS ReceiveMessage (empty)');
        return;
      }
      tally.call(`SQS ${op}`);
      const payload =
        op === 'SendMessageBatch'
          ? sqsPayload(body?.Entries)
          : op === 'SendMessage'
            ? sqsPayload([body])
            : op === 'ReceiveMessage'
              ? sqsPayload(answer?.Messages)
              : 0;
      tally.sqsBilled += Math.max(1, Math.ceil(payload / SQS_CHUNK));
      return;
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (service === 'SESv2' || path.startsWith('/v2/email')) {
      tally.call(
        path.startsWith('/v2/email/outbound-emails') ? 'SESv2 SendEmail' : `SESv2 ${req.method} ${path}`,
      );
      return;
    }
    const form = typeof body?.Action === 'string' ? body.Action : undefined;
    if (form !== undefined) {
      tally.call(`SNS ${form}`);
      return;
    }
    tally.call(
      `S3 ${req.method === 'PUT' ? 'PutObject' : req.method === 'GET' ? 'GetObject' : (req.method ?? '?')}`,
    );
  };

  const parse = (req: IncomingMessage, raw: Buffer): Json | undefined => {
    if (req.headers['x-amz-target'] !== undefined && raw.length > 0) {
      try {
        return JSON.parse(raw.toString()) as Json;
      } catch {
        return undefined;
      }
    }
    if (String(req.headers['content-type'] ?? '').includes('x-www-form-urlencoded'))
      return Object.fromEntries(new URLSearchParams(raw.toString()));
    return undefined;
  };
  // The counting is this module's; forwarding is local mode's proxy, which the soak uses too.
  const proxy = await startAwsProxy({
    target,
    service: `${service} meter`,
    rewrite: (req, raw) => {
      const amzTarget = String(req.headers['x-amz-target'] ?? '');
      const op = amzTarget.slice(amzTarget.lastIndexOf('.') + 1);
      const body = amzTarget.startsWith('DynamoDB') ? parse(req, raw) : undefined;
      if (!body || !(READS.has(op) || WRITES.has(op))) return raw;
      // The emulator does not check signatures; the SDK reads the extra answer field as output.
      return Buffer.from(JSON.stringify({ ...body, ReturnConsumedCapacity: 'TOTAL' }));
    },
    observe: (req, raw, status, out) => {
      const answer = req.headers['x-amz-target'] !== undefined ? parse(req, out) : undefined;
      account(req, parse(req, raw), status, answer);
    },
  });
  return { endpoint: proxy.endpoint, usage: () => tally.usage(), stop: () => proxy.stop() };
}
