/**
 * Finds what `npm run guard` works on, as `npm run keys` finds its table (keys-target.ts): a running
 * local mode through its `local.json`, or a deployed stack through its outputs. The result is the
 * same adapters the functions use (tables, lane queues with their claim-check bucket); the guard's
 * own (its table, the held index) come from `wire`, the guard's wiring factory.
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoApiKeyStore } from '../lambdas/adapters/api-key-store.ts';
import { createDocumentClient } from '../lambdas/adapters/clients.ts';
import { SqsJobQueue } from '../lambdas/adapters/job-queue.ts';
import { DynamoMessageStore } from '../lambdas/adapters/message-store.ts';
import { S3PayloadStore } from '../lambdas/adapters/payload-store.ts';
import { createWebhookPublisher } from '../lambdas/adapters/webhook-wiring.ts';
import { ApiKeyNotFoundError, ApiKeyRevokedError } from '../lambdas/domain/keys/api-key.ts';
import type { Clock, Guard, GuardStateStore, HeldJobs } from '../lambdas/domain/ports.ts';
import { EnvVar } from '../lambdas/shared/names.ts';
import {
  GUARD_USAGE,
  type GuardCliTarget,
  type GuardCommand,
  parseGuardArgs,
  runGuardCommand,
} from './guard-cli.ts';
import {
  CommandFailedError,
  EXIT_FAILURE,
  EXIT_USAGE,
  type Output,
  type TargetChoice,
  UsageError,
} from './keys-cli.ts';
import { API_KEYS_TABLE_OUTPUT, readLocalState, stackOutputs } from './keys-target.ts';

/** The stack outputs that name what the guard's commands read and write (lib/baton-stack.ts). */
export const GUARD_STACK_OUTPUTS = {
  [EnvVar.apiKeysTable]: API_KEYS_TABLE_OUTPUT,
  [EnvVar.messagesTable]: 'MessagesTableName',
  [EnvVar.transactionalQueueUrl]: 'TransactionalQueueUrl',
  [EnvVar.broadcastQueueUrl]: 'BroadcastQueueUrl',
  [EnvVar.payloadBucket]: 'PayloadBucketName',
  [EnvVar.guardTable]: 'GuardTableName',
} as const;

/** What the guard's wiring is built from: the clients and the environment a function would have. */
export interface GuardParts {
  readonly doc: DynamoDBDocumentClient;
  readonly keyStore: DynamoApiKeyStore;
  readonly s3: S3Client;
  /** The variables the functions read (EnvVar names): tables, queues, the payload bucket. */
  readonly env: NodeJS.ProcessEnv;
  readonly clock: Clock;
}

export type GuardWiring = (parts: GuardParts) => {
  readonly guard: Guard;
  readonly held: HeldJobs;
  readonly state: Pick<GuardStateStore, 'tenant' | 'putTenant'>;
};

export interface OpenGuardTarget extends GuardCliTarget {
  close(): void;
}

export async function openGuardTarget(choice: TargetChoice, wire: GuardWiring): Promise<OpenGuardTarget> {
  return choice.kind === 'local' ? openLocal(choice, wire) : openStack(choice.stack, choice.region, wire);
}

function openLocal(choice: Extract<TargetChoice, { kind: 'local' }>, wire: GuardWiring): OpenGuardTarget {
  const state = readLocalState(choice.stateDir, choice.explicit);
  if (state.sqsEndpoint === undefined) {
    throw new CommandFailedError('local.json lacks the SQS endpoint; restart local mode to rewrite it.');
  }
  // Fake credentials: the emulators ignore them, and real ones must never leave for a local tool.
  const local = { region: state.region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
  const dynamo = new DynamoDBClient({ ...local, endpoint: state.endpoint, maxAttempts: 2 });
  const sqs = new SQSClient({ ...local, endpoint: state.sqsEndpoint, useQueueUrlAsEndpoint: false });
  // Local mode's S3 is served on the SQS emulator's endpoint, by path only (local/baton-local.ts).
  const s3 = new S3Client({ ...local, endpoint: state.sqsEndpoint, forcePathStyle: true });
  return assemble(`local mode at ${state.url}`, state.environment, { dynamo, sqs, s3 }, wire);
}

async function openStack(
  stack: string,
  region: string | undefined,
  wire: GuardWiring,
): Promise<OpenGuardTarget> {
  const cfn = new CloudFormationClient(region ? { region } : {});
  try {
    const { outputs } = await stackOutputs(cfn, stack);
    const resolvedRegion = await cfn.config.region();
    const env: Record<string, string> = {};
    for (const [name, output] of Object.entries(GUARD_STACK_OUTPUTS)) {
      const value = outputs[output];
      if (value === undefined) {
        throw new CommandFailedError(
          `Stack ${stack} in ${resolvedRegion} has no ${output} output: deploy this version of Baton first.`,
        );
      }
      env[name] = value;
    }
    const clients = {
      dynamo: new DynamoDBClient({ region: resolvedRegion }),
      sqs: new SQSClient({ region: resolvedRegion }),
      s3: new S3Client({ region: resolvedRegion }),
    };
    return assemble(`stack ${stack} (${resolvedRegion})`, env, clients, wire);
  } finally {
    cfn.destroy();
  }
}

function assemble(
  description: string,
  env: Readonly<Record<string, string>>,
  clients: { readonly dynamo: DynamoDBClient; readonly sqs: SQSClient; readonly s3: S3Client },
  wire: GuardWiring,
): OpenGuardTarget {
  const need = (name: string): string => {
    const value = env[name];
    if (!value) throw new CommandFailedError(`${description} does not name ${name}; restart or redeploy it.`);
    return value;
  };
  const doc = createDocumentClient(clients.dynamo);
  const keyStore = new DynamoApiKeyStore(doc, need(EnvVar.apiKeysTable));
  const clock = () => new Date();
  const { guard, held, state } = wire({ doc, keyStore, s3: clients.s3, env: { ...env }, clock });
  return {
    description,
    state,
    ops: {
      // Read straight from the table, never cached: a resume is seen by the next release at once.
      keys: keyStore,
      messages: new DynamoMessageStore(doc, need(EnvVar.messagesTable)),
      queue: new SqsJobQueue(
        clients.sqs,
        { transactional: need(EnvVar.transactionalQueueUrl), broadcast: need(EnvVar.broadcastQueueUrl) },
        new S3PayloadStore(clients.s3, need(EnvVar.payloadBucket)),
      ),
      held,
      guard,
      clock,
      // message.released / message.failed to the tenant's webhooks (issue 14), where the target's
      // environment names the Webhooks table (local mode); otherwise nothing is published.
      webhooks: createWebhookPublisher({ ...env }, { doc, sqs: clients.sqs }),
    },
    close: () => {
      clients.dynamo.destroy();
      clients.sqs.destroy();
      clients.s3.destroy();
    },
  };
}

/**
 * `npm run guard`'s process: parse, open the target, run, and turn failures into words and an exit
 * code (0 done, 1 failed or something still held, 2 a command line that cannot run). `guard.ts`
 * calls it with the guard's wiring.
 */
export async function mainGuard(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  wire: GuardWiring,
  io: Output,
): Promise<number> {
  let command: GuardCommand;
  try {
    command = parseGuardArgs(argv, env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`${error.message}\nRun "npm run guard -- --help" for usage.`);
    return EXIT_USAGE;
  }
  if (command.command === 'help') {
    io.out(GUARD_USAGE);
    return 0;
  }
  let target: OpenGuardTarget | undefined;
  try {
    target = await openGuardTarget(command.target, wire);
    await runGuardCommand(command, target, io);
    return 0;
  } catch (error) {
    io.err(guardFailure(error, target));
    return EXIT_FAILURE;
  } finally {
    target?.close();
  }
}

function guardFailure(error: unknown, target: OpenGuardTarget | undefined): string {
  const where = target ? ` (${target.description})` : '';
  if (error instanceof CommandFailedError) return error.message;
  if (error instanceof ApiKeyNotFoundError) return `No API key has the id ${error.keyId}${where}.`;
  if (error instanceof ApiKeyRevokedError) {
    return `Key ${error.keyId} is revoked, which is permanent: it cannot be resumed. Create a new key instead.`;
  }
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'ResourceNotFoundException')
    return `A table or queue of Baton does not exist${where}: ${message}`;
  if (name === 'TransientError') {
    return `Could not reach AWS or the emulators${where}: ${message}. Is it running and reachable? Try again: nothing is sent twice.`;
  }
  return `Failed${where}: ${name}: ${message}`;
}
