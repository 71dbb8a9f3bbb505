/**
 * An IAM audit for code that runs against emulators, which enforce no IAM: record every AWS call
 * the real adapters make (as the IAM action and resource ARNs AWS would authorise), read what a
 * function's role allows from the synthesized template, and list what was used but not granted.
 * Deployed, each such call is an AccessDenied; locally it passes unnoticed (twice: the sender's
 * PutItem and the api's BatchWriteItem on Messages).
 *
 * Resources are compared as ARNs. Local mode names tables, queues and configuration sets after
 * their logical ids and buckets after their lower-cased logical ids (local/plan.ts,
 * local/provision.ts), so a call recorded against resources provisioned by
 * `startProvisionedStack()` and a template ARN resolved here name the same thing. The region,
 * account and partition are the stack's own on both sides ({@link LOCAL_ARN_SCOPE}).
 */

import { ENTRY_METADATA_KEY } from '../../lambdas/shared/names.ts';
import type { CfnTemplate } from '../../local/plan.ts';
import { localBucketName } from '../../local/plan.ts';

/** The partition, region and account that ARNs are written with, on both sides of the comparison. */
export interface ArnScope {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
}

/** What local mode resolves `AWS::Partition`, `AWS::Region` and `AWS::AccountId` to. */
export const LOCAL_ARN_SCOPE: ArnScope = { partition: 'aws', region: 'us-east-1', account: '000000000000' };

/** One IAM action an SDK call needs, on every one of `resources`. */
export interface RecordedCall {
  /** The client's service: `DynamoDB`, `SQS`, `S3`, `SESv2`. */
  readonly service: string;
  /** The API operation called (`BatchWriteItem`, `SendMessageBatch`). */
  readonly operation: string;
  /** The IAM action that authorises it (`dynamodb:BatchWriteItem`, `sqs:SendMessage`). */
  readonly action: string;
  /** ARNs the action is authorised against (`*` when the call names none). */
  readonly resources: readonly string[];
  /**
   * DynamoDB item calls: the attributes that name each item touched (a Get's `Key`, a Put's
   * `Item`, a Query's equality conditions), from which the table's partition key value is taken
   * for `dynamodb:LeadingKeys` conditions. Absent for calls that name no item (Scan).
   */
  readonly items?: ReadonlyArray<Readonly<Record<string, unknown>>>;
}

/** An action used on a resource that no statement of the role allows. */
export interface MissingPermission {
  readonly action: string;
  readonly resource: string;
}

/** A call or template construct the audit cannot interpret; it refuses rather than guess. */
export class IamAuditError extends Error {
  override readonly name = 'IamAuditError';
}

// --- recording ----------------------------------------------------------------------------------

type Input = Record<string, unknown>;
interface MiddlewareContext {
  readonly clientName?: string;
  readonly commandName?: string;
}
type Handler = (args: { input: Input }) => Promise<unknown>;

/** The part of an SDK client's middleware stack used here (its own types need the client's unions). */
interface Stack {
  add(
    middleware: (next: Handler, context: MiddlewareContext) => Handler,
    options: { step: 'initialize'; name: string; priority?: 'high' | 'normal' | 'low' },
  ): void;
}

/**
 * Adds an `initialize` middleware to an SDK client (or a DynamoDBDocumentClient, which shares its
 * client's stack): it runs once per `client.send`, before retries, with the command's input as
 * given (a document client's input is not marshalled yet). `high` runs before `normal` and `low`.
 */
export function addCallMiddleware(
  client: { readonly middlewareStack: object },
  name: string,
  middleware: (next: Handler, context: MiddlewareContext) => Handler,
  priority: 'high' | 'normal' | 'low' = 'normal',
): void {
  (client.middlewareStack as unknown as Stack).add(middleware, { step: 'initialize', name, priority });
}

/**
 * Records the IAM requirements of every call the instrumented clients make, whether it then
 * succeeds or fails (IAM is checked before the service acts). Never throws from inside the SDK: a
 * call it cannot map is recorded as `<prefix>:<Operation>` on `*`, which no scoped policy grants,
 * so it shows up as missing rather than silently passing.
 */
export class IamRecorder {
  readonly #calls: RecordedCall[] = [];
  readonly #scope: ArnScope;

  constructor(scope: ArnScope = LOCAL_ARN_SCOPE) {
    this.#scope = scope;
  }

  /** Adds the recorder to `client`'s middleware stack; returns the client. */
  instrument<C extends { readonly middlewareStack: object }>(client: C): C {
    addCallMiddleware(client, 'batonIamRecorder', (next, context) => async (args) => {
      const service = (context.clientName ?? 'Unknown').replace(/Client$/, '');
      const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
      this.#calls.push(...requirementsOf(service, operation, args.input, this.#scope));
      return next(args);
    });
    return client;
  }

  /** Every requirement recorded since the last reset, in call order. */
  calls(): RecordedCall[] {
    return this.#calls.map((c) => ({ ...c, resources: [...c.resources] }));
  }

  reset(): void {
    this.#calls.length = 0;
  }
}

/** lib-dynamodb command names, should a document command's own name reach the stack. */
const DOCUMENT_COMMANDS: Readonly<Record<string, string>> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  BatchGet: 'BatchGetItem',
  BatchWrite: 'BatchWriteItem',
  TransactGet: 'TransactGetItems',
  TransactWrite: 'TransactWriteItems',
};

const IAM_PREFIX: Readonly<Record<string, string>> = {
  DynamoDB: 'dynamodb',
  SQS: 'sqs',
  S3: 's3',
  SESv2: 'ses',
};

/** The IAM actions (and their resources) one call needs. Exported for the helper's own tests. */
export function requirementsOf(
  service: string,
  operation: string,
  input: Input,
  scope: ArnScope = LOCAL_ARN_SCOPE,
): RecordedCall[] {
  const need = (action: string, resources: readonly string[], op = operation): RecordedCall => ({
    service,
    operation: op,
    action,
    resources: resources.length > 0 ? resources : ['*'],
  });
  switch (service) {
    case 'DynamoDB':
      return dynamoRequirements(DOCUMENT_COMMANDS[operation] ?? operation, input, scope, need);
    case 'SQS':
      return sqsRequirements(operation, input, scope, need);
    case 'S3':
      return s3Requirements(operation, input, scope, need);
    case 'SESv2':
      return sesRequirements(operation, input, scope, need);
    default:
      return [need(`${IAM_PREFIX[service] ?? service.toLowerCase()}:${operation}`, [])];
  }
}

type Need = (action: string, resources: readonly string[], operation?: string) => RecordedCall;

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const records = (value: unknown): Input[] =>
  Array.isArray(value) ? value.filter((v): v is Input => typeof v === 'object' && v !== null) : [];

export function tableArn(name: string, scope: ArnScope = LOCAL_ARN_SCOPE): string {
  return name.startsWith('arn:')
    ? name
    : `arn:${scope.partition}:dynamodb:${scope.region}:${scope.account}:table/${name}`;
}

/** Transaction members are authorised by the item action each one performs. */
const TRANSACT_ACTIONS: Readonly<Record<string, string>> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  ConditionCheck: 'ConditionCheckItem',
};

function dynamoRequirements(operation: string, input: Input, scope: ArnScope, need: Need): RecordedCall[] {
  const table = str(input.TableName);
  switch (operation) {
    case 'BatchGetItem':
    case 'BatchWriteItem': {
      // One requirement per table, naming that table's items: a LeadingKeys condition is evaluated
      // on every item a batch puts, deletes or gets (a batch is refused whole for one item outside).
      const requests = Object.entries((input.RequestItems as Input | undefined) ?? {});
      if (requests.length === 0) return [need(`dynamodb:${operation}`, [], operation)];
      return requests.map(([name, request]) => ({
        ...need(`dynamodb:${operation}`, [tableArn(name, scope)], operation),
        items:
          operation === 'BatchGetItem'
            ? records((request as Input | undefined)?.Keys)
            : records(request).flatMap((r) => {
                const item = ((r.PutRequest as Input | undefined)?.Item ??
                  (r.DeleteRequest as Input | undefined)?.Key) as Input | undefined;
                return item === undefined ? [] : [item];
              }),
      }));
    }
    case 'TransactGetItems':
    case 'TransactWriteItems':
      return records(input.TransactItems).flatMap((item) =>
        Object.entries(item).flatMap(([kind, member]) => {
          const action = TRANSACT_ACTIONS[kind];
          const name = str((member as Input | undefined)?.TableName);
          return action && name ? [need(`dynamodb:${action}`, [tableArn(name, scope)], operation)] : [];
        }),
      );
    case 'Query':
    case 'Scan': {
      // A query or scan of an index is authorised against the index ARN, not the table's.
      const index = str(input.IndexName);
      const arn = table ? tableArn(table, scope) : undefined;
      const call = need(`dynamodb:${operation}`, arn ? [index ? `${arn}/index/${index}` : arn] : []);
      return [operation === 'Query' ? { ...call, items: [queryEqualities(input)] } : call];
    }
    default: {
      const call = need(`dynamodb:${operation}`, table ? [tableArn(table, scope)] : []);
      const item = (input.Key ?? input.Item) as Input | undefined;
      return [item === undefined ? call : { ...call, items: [item] }];
    }
  }
}

/** The `name = :value` terms of a Query's key condition, names and values resolved. */
function queryEqualities(input: Input): Input {
  const names = (input.ExpressionAttributeNames as Record<string, string> | undefined) ?? {};
  const values = (input.ExpressionAttributeValues as Input | undefined) ?? {};
  const found: Input = {};
  for (const [, name, value] of String(input.KeyConditionExpression ?? '').matchAll(
    /([#\w]+)\s*=\s*(:\w+)/g,
  )) {
    if (name !== undefined && value !== undefined) found[names[name] ?? name] = values[value];
  }
  return found;
}

export function queueArn(queueUrlOrName: string, scope: ArnScope = LOCAL_ARN_SCOPE): string {
  const name = queueUrlOrName.split('/').pop() ?? queueUrlOrName;
  return `arn:${scope.partition}:sqs:${scope.region}:${scope.account}:${name}`;
}

/** The batch variants are authorised by the single-message actions. */
const SQS_BATCH_ACTIONS: Readonly<Record<string, string>> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

function sqsRequirements(operation: string, input: Input, scope: ArnScope, need: Need): RecordedCall[] {
  const queue = str(input.QueueUrl) ?? str(input.QueueName);
  return [need(`sqs:${SQS_BATCH_ACTIONS[operation] ?? operation}`, queue ? [queueArn(queue, scope)] : [])];
}

export function bucketArn(bucket: string, scope: ArnScope = LOCAL_ARN_SCOPE): string {
  return `arn:${scope.partition}:s3:::${bucket}`;
}

/** S3 operations whose IAM action has another name. */
const S3_ACTIONS: Readonly<Record<string, string>> = {
  HeadObject: 'GetObject',
  CreateMultipartUpload: 'PutObject',
  UploadPart: 'PutObject',
  CompleteMultipartUpload: 'PutObject',
  AbortMultipartUpload: 'AbortMultipartUpload',
  ListObjects: 'ListBucket',
  ListObjectsV2: 'ListBucket',
  HeadBucket: 'ListBucket',
  DeleteObjects: 'DeleteObject',
};

function s3Requirements(operation: string, input: Input, scope: ArnScope, need: Need): RecordedCall[] {
  const bucket = str(input.Bucket);
  const key = str(input.Key);
  if (operation === 'DeleteObjects' && bucket) {
    const keys = records((input.Delete as Input | undefined)?.Objects).flatMap((o) => str(o.Key) ?? []);
    return [
      need(
        's3:DeleteObject',
        keys.map((k) => `${bucketArn(bucket, scope)}/${k}`),
      ),
    ];
  }
  const resource = bucket ? [key ? `${bucketArn(bucket, scope)}/${key}` : bucketArn(bucket, scope)] : [];
  let action = S3_ACTIONS[operation] ?? operation;
  if ((operation === 'GetObject' || operation === 'HeadObject') && input.VersionId)
    action = 'GetObjectVersion';
  const needs = [need(`s3:${action}`, resource)];
  // Setting tags or an ACL while putting an object is authorised separately.
  if (operation === 'PutObject' && input.Tagging !== undefined)
    needs.push(need('s3:PutObjectTagging', resource));
  if (operation === 'PutObject' && Object.keys(input).some((k) => k === 'ACL' || k.startsWith('Grant'))) {
    needs.push(need('s3:PutObjectAcl', resource));
  }
  return needs;
}

/** The domain of `Name <local@domain>` or `local@domain`, lower-cased. */
function domainOf(mailbox: string): string | undefined {
  const address = /<([^>]*)>\s*$/.exec(mailbox)?.[1] ?? mailbox;
  const at = address.lastIndexOf('@');
  return at < 0
    ? undefined
    : address
        .slice(at + 1)
        .trim()
        .toLowerCase();
}

function sesRequirements(operation: string, input: Input, scope: ArnScope, need: Need): RecordedCall[] {
  if (operation !== 'SendEmail') return [need(`ses:${operation}`, [])];
  const account = `arn:${scope.partition}:ses:${scope.region}:${scope.account}`;
  const from = str(input.FromEmailAddress);
  const identity =
    str(input.FromEmailAddressIdentityArn) ??
    (from && domainOf(from) ? `${account}:identity/${domainOf(from)}` : undefined);
  if (identity === undefined) {
    // SES then takes the identity from the raw From header, which is not parsed here: `*` fails any
    // policy scoped to identities, so the call is reported rather than guessed.
    return [need('ses:SendEmail', [])];
  }
  const configurationSet = str(input.ConfigurationSetName);
  const resources = [
    identity,
    ...(configurationSet ? [`${account}:configuration-set/${configurationSet}`] : []),
  ];
  // SES v2 SendEmail is `ses:SendEmail`; with raw content AWS also evaluates `ses:SendRawEmail`
  // (an AccessDenied naming SendRawEmail is what a role without it gets).
  const raw = (input.Content as Input | undefined)?.Raw !== undefined;
  return [need('ses:SendEmail', resources), ...(raw ? [need('ses:SendRawEmail', resources)] : [])];
}

// --- reading the template -----------------------------------------------------------------------

export interface PolicyStatement {
  readonly effect: 'Allow' | 'Deny';
  readonly actions: readonly string[];
  /** Resolved ARNs, possibly with `*` and `?` wildcards. */
  readonly resources: readonly string[];
  /**
   * A `ForAllValues:StringLike` condition on `dynamodb:LeadingKeys`: every item the call names
   * must have a partition key value matching one of these patterns (the only condition audited).
   */
  readonly leadingKeys?: readonly string[];
}

/** Every identity-policy statement that applies to one role. */
export interface RolePolicy {
  readonly role: string;
  readonly statements: readonly PolicyStatement[];
  /** Partition key attribute of each table of the template, by table ARN (for LeadingKeys). */
  readonly partitionKeys?: Readonly<Record<string, string>>;
}

type Json = Record<string, unknown>;
interface Resource {
  readonly Type: string;
  readonly Properties?: Json;
  readonly Metadata?: Json;
}

const asArray = <T>(value: T | readonly T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? [...(value as T[])] : [value as T];

const resourcesOf = (template: CfnTemplate): Record<string, Resource> =>
  template.Resources as Record<string, Resource>;

/** Logical ids of the functions whose `baton:entry` metadata is `entry`. */
export function functionsWithEntry(template: CfnTemplate, entry: string): string[] {
  return Object.entries(resourcesOf(template))
    .filter(([, r]) => r.Type === 'AWS::Lambda::Function' && r.Metadata?.[ENTRY_METADATA_KEY] === entry)
    .map(([id]) => id);
}

/** The policy of the role of the one function whose entry is `entry`. */
export function policyOfEntry(
  template: CfnTemplate,
  entry: string,
  scope: ArnScope = LOCAL_ARN_SCOPE,
): RolePolicy {
  const ids = functionsWithEntry(template, entry);
  const [id, ...others] = ids;
  if (id === undefined || others.length > 0) {
    throw new IamAuditError(`expected one function with ${ENTRY_METADATA_KEY} ${entry}, found ${ids.length}`);
  }
  return policyOfFunction(template, id, scope);
}

/** Every statement of every identity policy attached to the function's role. */
export function policyOfFunction(
  template: CfnTemplate,
  functionId: string,
  scope: ArnScope = LOCAL_ARN_SCOPE,
): RolePolicy {
  const resources = resourcesOf(template);
  const fn = resources[functionId];
  if (fn?.Type !== 'AWS::Lambda::Function')
    throw new IamAuditError(`${functionId} is not a function in the template`);
  const role = logicalIdIn(fn.Properties?.Role);
  if (role === undefined || resources[role]?.Type !== 'AWS::IAM::Role') {
    throw new IamAuditError(`function ${functionId}: its role is not a role of this template`);
  }
  const roleProps = resources[role]?.Properties ?? {};
  if (asArray(roleProps.ManagedPolicyArns as unknown[]).length > 0) {
    throw new IamAuditError(`role ${role}: managed policy ARNs cannot be read from the template`);
  }
  const documents: unknown[] = asArray(roleProps.Policies as Json[]).map((p) => p.PolicyDocument);
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::IAM::Policy' && r.Type !== 'AWS::IAM::ManagedPolicy') continue;
    const roles = asArray(r.Properties?.Roles as unknown[]).map(logicalIdIn);
    if (roles.includes(role)) documents.push(r.Properties?.PolicyDocument);
  }
  const statements = documents.flatMap((document) =>
    asArray<Json>((document as { Statement?: Json | Json[] } | undefined)?.Statement).map((s) =>
      readStatement(s, template, scope, role),
    ),
  );
  const partitionKeys: Record<string, string> = {};
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::DynamoDB::Table') continue;
    const hash = asArray(r.Properties?.KeySchema as Json[]).find((k) => k.KeyType === 'HASH');
    if (typeof hash?.AttributeName === 'string') partitionKeys[tableArn(id, scope)] = hash.AttributeName;
  }
  return { role, statements, partitionKeys };
}

function readStatement(s: Json, template: CfnTemplate, scope: ArnScope, role: string): PolicyStatement {
  for (const unsupported of ['NotAction', 'NotResource'] as const) {
    if (s[unsupported] !== undefined) {
      throw new IamAuditError(
        `role ${role}: a statement with ${unsupported} cannot be audited by this helper`,
      );
    }
  }
  const effect = s.Effect;
  if (effect !== 'Allow' && effect !== 'Deny')
    throw new IamAuditError(`role ${role}: statement without an Effect`);
  const leadingKeys = s.Condition === undefined ? undefined : leadingKeysOf(s.Condition, role);
  return {
    effect,
    actions: asArray(s.Action as string | string[]),
    resources: asArray(s.Resource as unknown).map((r) => resolveArn(r, template, scope)),
    ...(leadingKeys === undefined ? {} : { leadingKeys }),
  };
}

/** The patterns of `{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [...]}}`; any other condition is refused. */
function leadingKeysOf(condition: unknown, role: string): string[] {
  const c = condition as Json;
  const like = c['ForAllValues:StringLike'] as Json | undefined;
  const patterns = like?.['dynamodb:LeadingKeys'];
  if (
    Object.keys(c).length !== 1 ||
    like === undefined ||
    Object.keys(like).length !== 1 ||
    patterns === undefined
  ) {
    throw new IamAuditError(
      `role ${role}: only a ForAllValues:StringLike condition on dynamodb:LeadingKeys can be audited, not ${JSON.stringify(condition)}`,
    );
  }
  return asArray(patterns as string | string[]);
}

/** `{Ref: X}` or `{Fn::GetAtt: [X, …]}` → X. */
function logicalIdIn(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Json;
  if (typeof v.Ref === 'string') return v.Ref;
  const att = v['Fn::GetAtt'];
  return Array.isArray(att) && typeof att[0] === 'string' ? att[0] : undefined;
}

/**
 * A policy resource as the ARN it names once deployed, with local mode's names: `Fn::GetAtt [X,
 * Arn]`, `Ref`, pseudo parameters and `Fn::Join` (e.g. `<table ARN>/index/<name>` or `<bucket
 * ARN>/payloads/*`). Anything else is refused with what it was.
 */
export function resolveArn(value: unknown, template: CfnTemplate, scope: ArnScope = LOCAL_ARN_SCOPE): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    const v = value as Json;
    const join = v['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
      return (join[1] as unknown[]).map((part) => resolveArn(part, template, scope)).join(join[0]);
    }
    if (typeof v.Ref === 'string') return refValue(v.Ref, template, scope);
    const att = v['Fn::GetAtt'];
    if (Array.isArray(att) && typeof att[0] === 'string' && typeof att[1] === 'string') {
      return attributeArn(att[0], att[1], template, scope);
    }
  }
  throw new IamAuditError(`cannot resolve the policy resource ${JSON.stringify(value)}`);
}

function refValue(id: string, template: CfnTemplate, scope: ArnScope): string {
  const pseudo: Readonly<Record<string, string>> = {
    'AWS::Partition': scope.partition,
    'AWS::Region': scope.region,
    'AWS::AccountId': scope.account,
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const known = pseudo[id];
  if (known !== undefined) return known;
  const resource = resourcesOf(template)[id];
  switch (resource?.Type) {
    case 'AWS::DynamoDB::Table':
    case 'AWS::SES::ConfigurationSet':
    case 'AWS::Logs::LogGroup':
      return id;
    case 'AWS::S3::Bucket':
      return localBucketName(id);
    case 'AWS::SES::EmailIdentity': {
      const identity = resource.Properties?.EmailIdentity;
      if (typeof identity === 'string') return identity.toLowerCase();
      break;
    }
    case 'AWS::SNS::Topic':
      return `arn:${scope.partition}:sns:${scope.region}:${scope.account}:${id}`;
    // No local Secrets Manager: the ARN local mode resolves the secret's Ref to (local/plan.ts).
    case 'AWS::SecretsManager::Secret':
      return `arn:${scope.partition}:secretsmanager:${scope.region}:${scope.account}:secret:${id}`;
  }
  throw new IamAuditError(
    `cannot resolve Ref ${id} (${resource?.Type ?? 'not in the template'}) in a policy`,
  );
}

function attributeArn(id: string, attribute: string, template: CfnTemplate, scope: ArnScope): string {
  const type = resourcesOf(template)[id]?.Type;
  const regional = (service: string) => `arn:${scope.partition}:${service}:${scope.region}:${scope.account}`;
  if (attribute === 'Arn') {
    switch (type) {
      case 'AWS::DynamoDB::Table':
        return tableArn(id, scope);
      case 'AWS::SQS::Queue':
        return queueArn(id, scope);
      case 'AWS::S3::Bucket':
        return bucketArn(localBucketName(id), scope);
      case 'AWS::Logs::LogGroup':
        return `${regional('logs')}:log-group:${id}:*`;
      case 'AWS::Lambda::Function':
        return `${regional('lambda')}:function:${id}`;
      case 'AWS::KMS::Key':
        return `${regional('kms')}:key/${id}`;
      case 'AWS::IAM::Role':
        return `arn:${scope.partition}:iam::${scope.account}:role/${id}`;
    }
  }
  if (attribute === 'StreamArn' && type === 'AWS::DynamoDB::Table') return `${tableArn(id, scope)}/stream/*`;
  if (attribute === 'TopicArn' && type === 'AWS::SNS::Topic') return refValue(id, template, scope);
  throw new IamAuditError(
    `cannot resolve Fn::GetAtt ${id}.${attribute} (${type ?? 'not in the template'}) in a policy`,
  );
}

// --- comparing ----------------------------------------------------------------------------------

/** IAM wildcard matching: `*` any run of characters, `?` one; actions ignore case, ARNs do not. */
function wildcard(pattern: string, value: string, ignoreCase: boolean): boolean {
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/-]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, ignoreCase ? 'is' : 's').test(value);
}

function matches(
  statement: PolicyStatement,
  action: string,
  resource: string,
  call?: RecordedCall,
  policy?: RolePolicy,
): boolean {
  return (
    statement.actions.some((a) => wildcard(a, action, true)) &&
    statement.resources.some((r) => wildcard(r, resource, false)) &&
    leadingKeysHold(statement, resource, call, policy)
  );
}

/**
 * ForAllValues over the partition key values of the items the call names (IAM evaluates it true
 * for a call that names none, as a Scan: the reason such a statement must not allow one).
 */
function leadingKeysHold(
  statement: PolicyStatement,
  resource: string,
  call: RecordedCall | undefined,
  policy: RolePolicy | undefined,
): boolean {
  if (statement.leadingKeys === undefined) return true;
  const partition = policy?.partitionKeys?.[resource.replace(/\/index\/.*$/, '')];
  if (call === undefined || partition === undefined) return false;
  return (call.items ?? []).every((item) => {
    // Document-client input holds plain values; a low-level client's, attribute values ({S: ...}).
    const raw = item[partition];
    const value = typeof raw === 'object' && raw !== null ? (raw as { S?: unknown }).S : raw;
    return typeof value === 'string' && (statement.leadingKeys ?? []).some((p) => wildcard(p, value, false));
  });
}

/**
 * Whether the role may perform `action` on `resource`: some Allow matches and no Deny does. With
 * `call`, conditions on the items it names are evaluated; without, a conditional Allow never matches.
 */
export function isAllowed(
  policy: RolePolicy,
  action: string,
  resource: string,
  call?: RecordedCall,
): boolean {
  const applicable = policy.statements.filter((s) => matches(s, action, resource, call, policy));
  return applicable.some((s) => s.effect === 'Allow') && !applicable.some((s) => s.effect === 'Deny');
}

/** What was used but not granted: one entry per action and resource, sorted. */
export function missingPermissions(
  recorded: readonly RecordedCall[],
  policy: RolePolicy,
): MissingPermission[] {
  const missing = new Map<string, MissingPermission>();
  for (const call of recorded) {
    for (const resource of call.resources) {
      if (!isAllowed(policy, call.action, resource, call)) {
        missing.set(`${call.action} ${resource}`, { action: call.action, resource });
      }
    }
  }
  return [...missing.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, m]) => m);
}

/**
 * Allowed action/resource pairs the recorded calls never needed (wildcard grants are compared as
 * written): the candidates for removal, for least privilege. Logs grants are the runtime's, not
 * the code's, and are left out.
 */
export function unusedGrants(recorded: readonly RecordedCall[], policy: RolePolicy): MissingPermission[] {
  const unused = new Map<string, MissingPermission>();
  for (const statement of policy.statements) {
    if (statement.effect !== 'Allow') continue;
    for (const action of statement.actions) {
      if (action.toLowerCase().startsWith('logs:')) continue;
      for (const resource of statement.resources) {
        const used = recorded.some(
          (c) =>
            wildcard(action, c.action, true) &&
            c.resources.some((r) => wildcard(resource, r, false) && leadingKeysHold(statement, r, c, policy)),
        );
        if (!used) unused.set(`${action} ${resource}`, { action, resource });
      }
    }
  }
  return [...unused.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, m]) => m);
}

/** The readable tail of an ARN: a table (`X`, `X/index/I`), queue, `bucket/key`, `identity/…`. */
export function resourceName(arn: string): string {
  if (arn === '*') return arn;
  const s3 = /^arn:[^:]+:s3:::(.*)$/.exec(arn);
  if (s3?.[1] !== undefined) return s3[1];
  const tail = arn.split(':').slice(5).join(':');
  return tail.replace(/^table\//, '');
}

/** The distinct `[action, resource name]` pairs of the calls, sorted: what a path used. */
export function usage(recorded: readonly RecordedCall[]): Array<[string, string]> {
  const pairs = new Set(
    recorded.flatMap((c) => c.resources.map((r) => `${c.action}\u0000${resourceName(r)}`)),
  );
  return [...pairs].sort().map((p) => p.split('\u0000') as [string, string]);
}
