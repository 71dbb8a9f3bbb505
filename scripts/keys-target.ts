/**
 * Finds the ApiKeys table the CLI works on: a running local mode (through the `local.json` it
 * writes in its state folder) or a deployed stack (through its CloudFormation outputs). Either way
 * the result is the same DynamoApiKeyStore the Lambdas use; only the client differs.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoApiKeyStore } from '../lambdas/adapters/api-key-store.ts';
import { createDocumentClient } from '../lambdas/adapters/clients.ts';
import { EnvVar, SENDING_DOMAINS_OUTPUT } from '../lambdas/shared/names.ts';
import { LOCAL_STATE_FILE, type LocalState } from '../local/state.ts';
import { CommandFailedError, type KeysTarget, type TargetChoice } from './keys-cli.ts';

/** Where local mode says where it is (local/state.ts); re-exported for the tests. */
export { LOCAL_STATE_FILE };

/** The stack output that names the ApiKeys table (lib/baton-stack.ts). */
export const API_KEYS_TABLE_OUTPUT = 'ApiKeysTableName';

export interface Target extends KeysTarget {
  readonly store: DynamoApiKeyStore;
  readonly table: string;
  close(): void;
}

export async function openTarget(choice: TargetChoice): Promise<Target> {
  return choice.kind === 'local' ? openLocal(choice) : openStack(choice.stack, choice.region);
}

function openLocal(choice: Extract<TargetChoice, { kind: 'local' }>): Target {
  const state = readLocalState(choice.stateDir, choice.explicit);
  // Fake credentials: the emulator ignores them, and real ones must never leave for a local tool.
  const client = new DynamoDBClient({
    region: state.region,
    endpoint: state.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 2,
  });
  return {
    store: new DynamoApiKeyStore(createDocumentClient(client), state.table),
    description: `local mode at ${state.url}`,
    sendingDomains: state.sendingDomains,
    howToAddDomain: 'restart local mode with it in BATON_SENDING_DOMAINS',
    table: state.table,
    close: () => client.destroy(),
  };
}

/** What the CLI needs from local.json, checked, so a stale or foreign file fails in words. */
export function readLocalState(
  stateDir: string,
  explicit: boolean,
  isRunning: (pid: number) => boolean = processRunning,
): {
  url: string;
  region: string;
  endpoint: string;
  table: string;
  sendingDomains: string[] | undefined;
  /** The api function's environment (table names, queue URLs, bucket), for `npm run guard`. */
  environment: Readonly<Record<string, string>>;
  /** The SQS emulator, which serves local mode's S3 too (by path). */
  sqsEndpoint: string | undefined;
} {
  const file = join(resolve(stateDir), LOCAL_STATE_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CommandFailedError(`Cannot read ${file}: ${(error as Error).message}`, { cause: error });
    }
    throw new CommandFailedError(
      explicit
        ? `Local mode is not running: ${file} does not exist. Start it with "npm start" (with the same BATON_STATE_DIR), or point --state-dir at its state folder.`
        : `No local Baton is running (${file} does not exist). Start local mode with "npm start", or manage a deployed stack with --stack ${'<name>'} [--region <region>].`,
      { cause: error },
    );
  }
  let state: Partial<LocalState>;
  try {
    state = JSON.parse(text) as Partial<LocalState>;
  } catch (error) {
    throw new CommandFailedError(`${file} is not valid JSON; restart local mode to rewrite it.`, {
      cause: error,
    });
  }
  const endpoint = state.endpoints?.dynamodb;
  const table = state.environment?.[EnvVar.apiKeysTable];
  if (typeof endpoint !== 'string' || typeof table !== 'string' || typeof state.region !== 'string') {
    throw new CommandFailedError(
      `${file} lacks the DynamoDB endpoint, region or ${EnvVar.apiKeysTable}; restart local mode to rewrite it.`,
    );
  }
  if (typeof state.pid === 'number' && !isRunning(state.pid)) {
    throw new CommandFailedError(
      `Local mode is not running: ${file} names process ${state.pid}, which has exited (its data, kept in memory, is gone). Start it again with "npm start".`,
    );
  }
  const sendingDomains = Array.isArray(state.sendingDomains)
    ? state.sendingDomains.filter((d): d is string => typeof d === 'string')
    : undefined;
  return {
    url: state.url ?? '(unknown URL)',
    region: state.region,
    endpoint,
    table,
    sendingDomains,
    environment: state.environment ?? {},
    sqsEndpoint: state.endpoints?.sqs,
  };
}

function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else; that still counts as running.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function openStack(stack: string, region: string | undefined): Promise<Target> {
  const cfn = new CloudFormationClient(region ? { region } : {});
  try {
    const { table, sendingDomains } = await stackOutputs(cfn, stack);
    const resolvedRegion = await cfn.config.region();
    const client = new DynamoDBClient({ region: resolvedRegion });
    return {
      store: new DynamoApiKeyStore(createDocumentClient(client), table),
      description: `stack ${stack} (${resolvedRegion})`,
      sendingDomains,
      howToAddDomain: `deploy the stack with it in domains: npx cdk deploy -c domains=${(sendingDomains ?? []).join(',')},<domain>`,
      table,
      close: () => client.destroy(),
    };
  } finally {
    cfn.destroy();
  }
}

/**
 * What the CLI reads from the stack's outputs: the ApiKeys table (required) and the SES identities
 * it sends from (undefined for a stack deployed before that output existed).
 */
export async function stackOutputs(
  cfn: CloudFormationClient,
  stack: string,
): Promise<{
  table: string;
  sendingDomains: string[] | undefined;
  /** Every output by key, for `npm run guard` (its tables, queues and bucket). */
  outputs: Readonly<Record<string, string>>;
}> {
  let region = '(unknown region)';
  try {
    region = await cfn.config.region();
  } catch (error) {
    throw new CommandFailedError(
      'No AWS region is configured: pass --region, or set AWS_REGION (or a region in your AWS profile).',
      { cause: error },
    );
  }
  let outputs: ReadonlyArray<{ OutputKey?: string; OutputValue?: string }>;
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: stack }));
    outputs = out.Stacks?.[0]?.Outputs ?? [];
  } catch (error) {
    throw new CommandFailedError(describeAwsFailure(error, stack, region), { cause: error });
  }
  const table = outputs.find((o) => o.OutputKey === API_KEYS_TABLE_OUTPUT)?.OutputValue;
  if (!table) {
    throw new CommandFailedError(
      `Stack ${stack} in ${region} has no ${API_KEYS_TABLE_OUTPUT} output: is it a Baton stack, and has its deployment finished?`,
    );
  }
  const domains = outputs.find((o) => o.OutputKey === SENDING_DOMAINS_OUTPUT)?.OutputValue;
  const sendingDomains = domains
    ?.split(',')
    .map((d) => d.trim().toLowerCase())
    .filter((d) => d !== '');
  const all = Object.fromEntries(
    outputs.flatMap((o) =>
      o.OutputKey && o.OutputValue !== undefined ? [[o.OutputKey, o.OutputValue]] : [],
    ),
  );
  return { table, sendingDomains, outputs: all };
}

function describeAwsFailure(error: unknown, stack: string, region: string): string {
  const name = (error as { name?: string }).name ?? 'Error';
  const message = (error as Error).message ?? String(error);
  if (name === 'ValidationError' && /does not exist/i.test(message)) {
    return `No CloudFormation stack named ${stack} in ${region}. Deploy it with "npx cdk deploy", or pass --stack and --region of yours.`;
  }
  if (name === 'CredentialsProviderError' || /credential/i.test(message)) {
    return `No usable AWS credentials (${message}). Configure them as for the AWS CLI (aws configure, AWS_PROFILE or environment variables).`;
  }
  if (name === 'AccessDenied' || name === 'AccessDeniedException') {
    return `AWS refused to describe stack ${stack} in ${region}: ${message}`;
  }
  return `Could not read stack ${stack} in ${region}: ${name}: ${message}`;
}
