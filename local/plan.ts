import { ENTRY_METADATA_KEY } from '../lambdas/shared/names.ts';

/**
 * Reads the synthesized CloudFormation template into what local mode must create and run. Local
 * mode provisions only from this, so it cannot drift from the stack: a table, queue, route or
 * event source added to the stack shows up locally without touching this folder.
 */

type Json = Record<string, unknown>;
interface Resource {
  readonly Type: string;
  readonly Properties?: Json;
  readonly Metadata?: Json;
}
export interface CfnTemplate {
  readonly Resources: Record<string, Resource>;
}

export interface TablePlan {
  readonly logicalId: string;
  readonly keySchema: ReadonlyArray<{ AttributeName: string; KeyType: string }>;
  readonly attributeDefinitions: ReadonlyArray<{ AttributeName: string; AttributeType: string }>;
  readonly globalSecondaryIndexes: ReadonlyArray<Json>;
  readonly ttlAttribute?: string;
}

export interface QueuePlan {
  readonly logicalId: string;
  readonly visibilityTimeout?: number;
  readonly messageRetentionPeriod?: number;
  readonly redrive?: { readonly deadLetterQueue: string; readonly maxReceiveCount: number };
}

/** An S3 bucket, which local mode creates on the S3 emulator (fauxqs). */
export interface BucketPlan {
  readonly logicalId: string;
  /** Its local name (see {@link localBucketName}). */
  readonly name: string;
}

export interface SubscriptionPlan {
  readonly topic: string;
  readonly queue: string;
  readonly rawMessageDelivery: boolean;
}

export interface FunctionPlan {
  readonly logicalId: string;
  /** Source entry, relative to the repository root. */
  readonly entry: string;
  readonly environment: Readonly<Record<string, unknown>>;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
}

export interface EventSourcePlan {
  readonly logicalId: string;
  readonly queue: string;
  readonly function: string;
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  readonly maxConcurrency: number;
  readonly reportBatchItemFailures: boolean;
}

export interface RoutePlan {
  readonly routeKey: string;
  readonly function: string;
}

export interface EventDestinationPlan {
  readonly configurationSet: string;
  readonly topic: string;
  readonly eventTypes: readonly string[];
}

export interface LocalPlan {
  readonly tables: readonly TablePlan[];
  /**
   * Secrets Manager secrets (logical ids). Local mode has no Secrets Manager: a `Ref` to one
   * resolves to a local ARN that names it, and local mode hands the functions the value itself.
   */
  readonly secrets: readonly string[];
  readonly queues: readonly QueuePlan[];
  readonly buckets: readonly BucketPlan[];
  readonly topics: readonly string[];
  readonly subscriptions: readonly SubscriptionPlan[];
  readonly functions: readonly FunctionPlan[];
  readonly eventSources: readonly EventSourcePlan[];
  readonly routes: readonly RoutePlan[];
  readonly configurationSets: readonly string[];
  readonly eventDestinations: readonly EventDestinationPlan[];
}

/** A template construct local mode cannot map; the message says which and why. */
export class UnsupportedTemplateError extends Error {
  override readonly name = 'UnsupportedTemplateError';
}

export function planFromTemplate(template: CfnTemplate): LocalPlan {
  const resources = Object.entries(template.Resources);
  const ofType = (type: string) => resources.filter(([, r]) => r.Type === type);

  const integrations = new Map<string, string>();
  for (const [id, r] of ofType('AWS::ApiGatewayV2::Integration')) {
    integrations.set(id, refOf(props(r).IntegrationUri, 'Fn::GetAtt', `integration ${id}`));
  }

  return {
    tables: ofType('AWS::DynamoDB::Table').map(([logicalId, r]) => {
      const p = props(r);
      const ttl = p.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
      return {
        logicalId,
        keySchema: p.KeySchema as TablePlan['keySchema'],
        attributeDefinitions: p.AttributeDefinitions as TablePlan['attributeDefinitions'],
        globalSecondaryIndexes: (p.GlobalSecondaryIndexes as Json[] | undefined) ?? [],
        ...(ttl?.Enabled && ttl.AttributeName ? { ttlAttribute: ttl.AttributeName } : {}),
      };
    }),
    queues: ofType('AWS::SQS::Queue').map(([logicalId, r]) => {
      const p = props(r);
      const redrive = p.RedrivePolicy as
        | { deadLetterTargetArn?: unknown; maxReceiveCount?: number }
        | undefined;
      return {
        logicalId,
        ...(typeof p.VisibilityTimeout === 'number' ? { visibilityTimeout: p.VisibilityTimeout } : {}),
        ...(typeof p.MessageRetentionPeriod === 'number'
          ? { messageRetentionPeriod: p.MessageRetentionPeriod }
          : {}),
        ...(redrive
          ? {
              redrive: {
                deadLetterQueue: refOf(
                  redrive.deadLetterTargetArn,
                  'Fn::GetAtt',
                  `queue ${logicalId} redrive`,
                ),
                maxReceiveCount: Number(redrive.maxReceiveCount),
              },
            }
          : {}),
      };
    }),
    secrets: ofType('AWS::SecretsManager::Secret').map(([id]) => id),
    buckets: ofType('AWS::S3::Bucket').map(([logicalId]) => ({
      logicalId,
      name: localBucketName(logicalId),
    })),
    topics: ofType('AWS::SNS::Topic').map(([id]) => id),
    subscriptions: ofType('AWS::SNS::Subscription').flatMap(([id, r]) => {
      const p = props(r);
      if (p.Protocol !== 'sqs') return [];
      return [
        {
          topic: refOf(p.TopicArn, 'Ref', `subscription ${id}`),
          queue: refOf(p.Endpoint, 'Fn::GetAtt', `subscription ${id}`),
          rawMessageDelivery: p.RawMessageDelivery === true || p.RawMessageDelivery === 'true',
        },
      ];
    }),
    functions: ofType('AWS::Lambda::Function').map(([logicalId, r]) => {
      const p = props(r);
      const entry = r.Metadata?.[ENTRY_METADATA_KEY];
      if (typeof entry !== 'string') {
        throw new UnsupportedTemplateError(`function ${logicalId} has no "${ENTRY_METADATA_KEY}" metadata`);
      }
      const env = (p.Environment as { Variables?: Json } | undefined)?.Variables ?? {};
      return {
        logicalId,
        entry,
        environment: env,
        timeoutSeconds: typeof p.Timeout === 'number' ? p.Timeout : 3,
        memoryMb: typeof p.MemorySize === 'number' ? p.MemorySize : 128,
      };
    }),
    eventSources: ofType('AWS::Lambda::EventSourceMapping').map(([logicalId, r]) => {
      const p = props(r);
      const scaling = p.ScalingConfig as { MaximumConcurrency?: number } | undefined;
      return {
        logicalId,
        queue: refOf(p.EventSourceArn, 'Fn::GetAtt', `event source ${logicalId}`),
        function: refOf(p.FunctionName, 'Ref', `event source ${logicalId}`),
        batchSize: typeof p.BatchSize === 'number' ? p.BatchSize : 10,
        maxBatchingWindowSeconds:
          typeof p.MaximumBatchingWindowInSeconds === 'number' ? p.MaximumBatchingWindowInSeconds : 0,
        maxConcurrency: scaling?.MaximumConcurrency ?? 2,
        reportBatchItemFailures: Array.isArray(p.FunctionResponseTypes)
          ? p.FunctionResponseTypes.includes('ReportBatchItemFailures')
          : false,
      };
    }),
    routes: ofType('AWS::ApiGatewayV2::Route').map(([id, r]) => {
      const p = props(r);
      const integration = integrationOf(p.Target, id);
      const fn = integrations.get(integration);
      if (!fn) throw new UnsupportedTemplateError(`route ${id} targets unknown integration ${integration}`);
      return { routeKey: String(p.RouteKey), function: fn };
    }),
    configurationSets: ofType('AWS::SES::ConfigurationSet').map(([id]) => id),
    eventDestinations: ofType('AWS::SES::ConfigurationSetEventDestination').flatMap(([id, r]) => {
      const p = props(r);
      const d = p.EventDestination as Json;
      const sns = d.SnsDestination as Json | undefined;
      if (!sns || d.Enabled === false) return [];
      return [
        {
          configurationSet: refOf(p.ConfigurationSetName, 'Ref', `event destination ${id}`),
          topic: refOf(sns.TopicARN, 'Ref', `event destination ${id}`),
          eventTypes: (d.MatchingEventTypes as string[]) ?? [],
        },
      ];
    }),
  };
}

function props(r: Resource): Json {
  return r.Properties ?? {};
}

/** `{Ref: X}` or `{Fn::GetAtt: [X, attr]}` → X. */
function refOf(value: unknown, kind: 'Ref' | 'Fn::GetAtt', where: string): string {
  if (typeof value === 'object' && value !== null) {
    const v = value as Json;
    if (kind === 'Ref' && typeof v.Ref === 'string') return v.Ref;
    const att = v['Fn::GetAtt'];
    if (Array.isArray(att) && typeof att[0] === 'string') return att[0];
    if (typeof v.Ref === 'string') return v.Ref;
  }
  throw new UnsupportedTemplateError(
    `${where}: expected a ${kind} to a resource, got ${JSON.stringify(value)}`,
  );
}

/** `{Fn::Join: ['', ['integrations/', {Ref: I}]]}` → I. */
function integrationOf(target: unknown, route: string): string {
  const join = (target as Json | undefined)?.['Fn::Join'];
  if (Array.isArray(join) && Array.isArray(join[1])) {
    for (const part of join[1] as unknown[]) {
      if (typeof part === 'object' && part !== null && typeof (part as Json).Ref === 'string') {
        return (part as Json).Ref as string;
      }
    }
  }
  throw new UnsupportedTemplateError(`route ${route}: unsupported Target ${JSON.stringify(target)}`);
}

/**
 * Physical names of the local resources, for resolving `Ref` / `Fn::GetAtt` in function
 * environments. Local resources are named after their logical ids.
 */
export interface Physical {
  readonly tables: ReadonlyMap<string, string>;
  readonly queues: ReadonlyMap<string, { url: string; arn: string; name: string }>;
  readonly topics: ReadonlyMap<string, string>;
  readonly configurationSets: ReadonlyMap<string, string>;
  /** Bucket logical id → local bucket name. */
  readonly buckets: ReadonlyMap<string, string>;
  /** Secret logical id → its local ARN (see {@link localSecretArn}); nothing is created for it. */
  readonly secrets?: ReadonlyMap<string, string>;
}

/** The ARN a `Ref` to a secret resolves to locally: it names the secret, no service answers it. */
export function localSecretArn(logicalId: string): string {
  return `arn:aws:secretsmanager:${LOCAL_REGION}:${LOCAL_ACCOUNT}:secret:${logicalId}`;
}

/**
 * The local name of a bucket: its logical id in lower case, since S3 bucket names allow no upper
 * case (CloudFormation generates the deployed ones).
 */
export function localBucketName(logicalId: string): string {
  const name = logicalId.toLowerCase();
  if (!/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(name)) {
    throw new UnsupportedTemplateError(`bucket ${logicalId}: "${name}" is not a valid local bucket name`);
  }
  return name;
}

/** Resolves a function environment against the local resources. */
export function resolveEnvironment(
  env: Readonly<Record<string, unknown>>,
  physical: Physical,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) out[name] = resolveValue(value, physical, name);
  return out;
}

function resolveValue(value: unknown, physical: Physical, where: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'object' && value !== null) {
    const v = value as Json;
    if (typeof v.Ref === 'string') {
      const id = v.Ref;
      const found =
        physical.tables.get(id) ??
        physical.queues.get(id)?.url ??
        physical.topics.get(id) ??
        physical.configurationSets.get(id) ??
        physical.buckets.get(id) ??
        physical.secrets?.get(id) ??
        PSEUDO[id];
      if (found !== undefined) return found;
    }
    const att = v['Fn::GetAtt'];
    if (Array.isArray(att) && typeof att[0] === 'string') {
      const q = physical.queues.get(att[0]);
      if (q && att[1] === 'Arn') return q.arn;
      if (q && att[1] === 'QueueUrl') return q.url;
      if (q && att[1] === 'QueueName') return q.name;
      const t = physical.topics.get(att[0]);
      if (t && att[1] === 'TopicArn') return t;
      const b = physical.buckets.get(att[0]);
      if (b && att[1] === 'Arn') return `arn:aws:s3:::${b}`;
    }
    const join = v['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
      return (join[1] as unknown[]).map((p) => resolveValue(p, physical, where)).join(join[0]);
    }
  }
  throw new UnsupportedTemplateError(
    `environment variable ${where}: cannot resolve ${JSON.stringify(value)} locally`,
  );
}

/** The region and account local mode pretends to run in (fauxqs's account). */
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT = '000000000000';

const PSEUDO: Readonly<Record<string, string>> = {
  'AWS::Region': LOCAL_REGION,
  'AWS::AccountId': LOCAL_ACCOUNT,
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
};
