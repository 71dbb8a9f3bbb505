import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { CHECK_IDS, CHECK_STATUSES, type CheckId, type CheckStatus } from '../domain/doctor/checks.ts';
import type { Baseline, BaselineStore } from '../domain/doctor/regression.ts';
import { DOCTOR_BASELINE_PREFIX, Keys } from '../shared/names.ts';
import { rethrow } from './aws-errors.ts';

const SORT = 'baseline';

/**
 * The scheduled doctor's last statuses, one small item per domain in the Guard table
 * (`doctor:<domain>` / `baseline`, no TTL). A table that exists already, fenced by a LeadingKeys
 * condition, costs less than a table or a parameter of its own and needs no other SDK client.
 */
export class DynamoBaselineStore implements BaselineStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.#doc = doc;
    this.#table = table;
  }

  async read(domain: string): Promise<Baseline | undefined> {
    try {
      const answer = await this.#doc.send(
        new GetCommand({ TableName: this.#table, Key: this.#key(domain), ConsistentRead: true }),
      );
      const statuses = answer.Item?.statuses as Record<string, unknown> | undefined;
      if (statuses === undefined) return undefined;
      // Only known ids and statuses: an item from an older doctor must not fake a regression.
      const baseline: Partial<Record<CheckId, CheckStatus>> = {};
      for (const id of CHECK_IDS) {
        const status = statuses[id];
        if (CHECK_STATUSES.includes(status as CheckStatus)) baseline[id] = status as CheckStatus;
      }
      return baseline;
    } catch (error) {
      rethrow(error, 'reading the doctor baseline');
    }
  }

  async write(domain: string, baseline: Baseline): Promise<void> {
    try {
      await this.#doc.send(
        new PutCommand({ TableName: this.#table, Item: { ...this.#key(domain), statuses: baseline } }),
      );
    } catch (error) {
      rethrow(error, 'writing the doctor baseline');
    }
  }

  #key(domain: string): Record<string, string> {
    return { [Keys.guard.partition]: `${DOCTOR_BASELINE_PREFIX}${domain}`, [Keys.guard.sort]: SORT };
  }
}
