/**
 * Section guard (issue 13): what the abuse guard adds per 1M messages. Its DynamoDB request units
 * are measured with the real adapters (built by lambdas/adapters/guard-wiring.ts) on dynalite,
 * against a Guard table of the stack's shape holding 30 days of full hour buckets, as a busy
 * key's and tenant's would; the model (bench/cost.ts `guardCost`, assumptions in
 * GUARD_ASSUMPTIONS) turns them into dollars. dynalite reports no capacity for a conditional write
 * whose condition failed; DynamoDB bills 1 WRU for it, so this section adds it.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoApiKeyStore } from '../../lambdas/adapters/api-key-store.ts';
import { guardAdapters } from '../../lambdas/adapters/guard-wiring.ts';
import {
  addHours,
  type GuardCounts,
  type GuardIncrement,
  hourOf,
} from '../../lambdas/domain/guard/counters.ts';
import { EnvVar, Keys } from '../../lambdas/shared/names.ts';
import { startDynamo } from '../../local/emulators/dynamodb.ts';
import { createPkSkTable, credentials, documentClient, region } from '../../test/support/emulators.ts';
import { GUARD_ASSUMPTIONS, type GuardUnits, guardCost, loadPrices } from '../cost.ts';
import { countCapacity } from '../support.ts';
import type { Row, Section } from './types.ts';

const TABLE = 'Guard';
/** Every counter of an hour bucket, at a busy key's sizes: the items the reads and writes measure. */
export const BUSY_HOUR: GuardCounts = {
  sends: 123_456,
  releasedSends: 4_321,
  hardBounces: 1234,
  complaints: 12,
  transientBounces: 321,
  suppressedHits: 45,
  contentRefusals: 6,
  newRecipientDomains: 789,
};
const NOW = new Date('2026-03-31T12:30:00.000Z');

async function measureUnits(): Promise<GuardUnits> {
  const dynamo = await startDynamo({ port: 0 });
  const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials });
  const doc = documentClient(client);
  const units = { wru: 0, rru: 0 };
  countCapacity(doc, units);
  try {
    await createPkSkTable(client, TABLE, Keys.guard);
    const { counters, state } = guardAdapters({
      doc,
      keyStore: new DynamoApiKeyStore(doc, 'ApiKeys'),
      env: { [EnvVar.guardTable]: TABLE },
    });
    const key = { kind: 'key', keyId: '01jexamplekeyid0' } as const;
    const tenant = { kind: 'tenant', tenant: 'acme-shop' } as const;
    const hour = hourOf(NOW);
    for (let h = 0; h < 30 * 24; h++) {
      await counters.add(
        [key, tenant].map((scope) => ({
          scope,
          hour: addHours(hour, -h),
          counts: BUSY_HOUR,
        })),
      );
    }
    await state.putTenant({ tenant: tenant.tenant, state: { actions: [] }, version: 1 });
    const measure = async (what: () => Promise<unknown>) => {
      units.wru = 0;
      units.rru = 0;
      await what();
      return { ...units };
    };
    const accept = (n: number): GuardIncrement[] =>
      [key, tenant].map((scope) => ({ scope, hour, counts: { sends: n } }));
    const acceptBatch = await measure(() => counters.add(accept(100)));
    const acceptSingle = await measure(() => counters.add(accept(1)));
    // A domain check is a once-per-(key, domain) marker: new (counted) or known (refused), 1 WRU either way.
    const domain = (d: string): GuardIncrement => ({
      scope: key,
      hour,
      counts: { newRecipientDomains: 1 },
      eventId: `domain:${d}`,
    });
    const newDomain = await measure(() => counters.add([domain('example.org')]));
    const knownDomain = await measure(() => counters.add([domain('example.org')]));
    const claims = await measure(async () => {
      await state.claimEvaluation(key, NOW, 60_000);
      await state.claimEvaluation(key, NOW, 60_000);
    });
    const evaluation = await measure(async () => {
      await counters.read(key, addHours(hour, -7 * 24), hour);
      await counters.read(tenant, addHours(hour, -(30 * 24 - 1)), hour);
      await state.tenant(tenant.tenant);
    });
    const events = Array.from({ length: 10 }, (_, i) =>
      [key, tenant].map(
        (scope): GuardIncrement => ({ scope, hour, counts: { hardBounces: 1 }, eventId: `0100018f-${i}#0` }),
      ),
    ).flat();
    const feedback = await measure(() => counters.add(events));
    return {
      acceptBatchWru: acceptBatch.wru,
      acceptSingleWru: acceptSingle.wru,
      // Merged into the accept's bucket write, a new domain costs its marker only: the larger of the two.
      domainCheckWru: Math.max(newDomain.wru - acceptSingle.wru / 2, knownDomain.wru),
      claimWru: claims.wru / 2,
      evaluationRru: evaluation.rru,
      feedbackEventWru: feedback.wru / 10,
    };
  } finally {
    client.destroy();
    await dynamo.stop();
  }
}

export const section: Section = {
  name: 'guard',
  title: 'what the abuse guard adds per 1M messages (DynamoDB, measured on dynalite)',
  async run() {
    const units = await measureUnits();
    const prices = loadPrices();
    const a = GUARD_ASSUMPTIONS;
    const rows: Row[] = [
      {
        section: 'guard',
        figure: 'guard DynamoDB units per operation',
        value: units.acceptBatchWru,
        unit: 'WRU',
        note:
          `accept of a batch of 100 ${units.acceptBatchWru} WRU (key + tenant buckets), of 1 message ${units.acceptSingleWru} WRU; ` +
          `domain check ${units.domainCheckWru} WRU; evaluation claim ${units.claimWru} WRU per scope and attempt; ` +
          `evaluation reads ${units.evaluationRru} RRU (key 7 days, tenant 30 days, tenant state); ` +
          `feedback ${units.feedbackEventWru} WRU per counted event (batches of 10)`,
      },
    ];
    for (const mode of ['batch', 'single'] as const) {
      const cost = guardCost(units, prices, mode);
      rows.push({
        section: 'guard',
        figure: `$ per 1M messages, abuse guard (${mode} mode)`,
        value: cost.total,
        unit: '$',
        note:
          `${Object.entries(cost.parts)
            .map(([k, v]) => `${k} $${v.toFixed(3)}`)
            .join(
              ', ',
            )}; assumes ${a.domainChecksPerMessage} domain checks and ${a.countedEventsPerMessage} counted ` +
          `feedback events per message, ${a.evaluationMinutesPerMillion} minutes of traffic per 1M messages (one key, ` +
          `a month), ${a.claimAttemptsPerScopeMinute} claim attempts per scope and minute`,
      });
    }
    return rows;
  },
};
