import type { Template } from 'aws-cdk-lib/assertions';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { Keys, LANES } from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import type { BatonFunction } from '../../lib/constructs/baton-function.ts';
import {
  asArray,
  type CfnResource,
  logicalIdOf,
  permissionsOf,
  primaryIdentity,
  props,
  render,
  resourcesOfType,
  statementsOf,
  synthTemplate,
} from './support.ts';

const ref = (id: string): string => `<${id}>`;
const ACCOUNT_ARN = 'arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>';

describe('IAM', () => {
  let template: Template;
  let stack: BatonStack;
  let tables: Record<
    'apiKeys' | 'messages' | 'suppressions' | 'stats' | 'idempotency' | 'guard' | 'webhooks',
    string
  >;
  let webhookQueue: string;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
    tables = {
      apiKeys: ref(logicalIdOf(stack.tables.apiKeys)),
      messages: ref(logicalIdOf(stack.tables.messages)),
      suppressions: ref(logicalIdOf(stack.tables.suppressions)),
      stats: ref(logicalIdOf(stack.tables.stats)),
      idempotency: ref(logicalIdOf(stack.tables.idempotency)),
      guard: ref(logicalIdOf(stack.tables.guard)),
      webhooks: ref(logicalIdOf(stack.tables.webhooks)),
    };
    webhookQueue = ref(logicalIdOf(stack.webhooks.queue.queue));
  });

  // What every producer of webhook events may do: find subscribers, keep the events, queue the jobs.
  const publishing = (): Record<string, string[]> => ({
    [tables.webhooks]: ['dynamodb:BatchWriteItem', 'dynamodb:Query'],
    [webhookQueue]: ['sqs:SendMessage'],
  });

  const logs = (fn: BatonFunction): Record<string, string[]> => ({
    [ref(logicalIdOf(fn.logGroup))]: ['logs:CreateLogStream', 'logs:PutLogEvents'],
  });

  it('grants no wildcard action in any IAM policy', () => {
    // Prepare
    const documents = [
      ...Object.values(resourcesOfType(template, 'AWS::IAM::Policy')).map((p) => props(p).PolicyDocument),
      ...Object.values(resourcesOfType(template, 'AWS::IAM::ManagedPolicy')).map(
        (p) => props(p).PolicyDocument,
      ),
      ...Object.values(resourcesOfType(template, 'AWS::IAM::Role')).flatMap((role) =>
        asArray(props(role).Policies as { PolicyDocument: unknown }[]).map((p) => p.PolicyDocument),
      ),
    ];

    // Act
    const actions = documents.flatMap((document) => statementsOf(document).flatMap((s) => asArray(s.Action)));

    // Assess
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.filter((action) => action.includes('*'))).toEqual([]);
  });

  it('attaches no AWS managed policy to any role', () => {
    // Act
    const roles = Object.values(resourcesOfType(template, 'AWS::IAM::Role'));

    // Assess
    expect(roles).toHaveLength(6);
    for (const role of roles) expect(props(role).ManagedPolicyArns).toBeUndefined();
    template.resourceCountIs('AWS::IAM::ManagedPolicy', 0);
  });

  it('lets only the Lambda service assume the function roles', () => {
    // Act / Assess
    template.allResourcesProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
        ],
      },
    });
  });

  it('grants wildcard actions in resource policies only as denials or the key administration statement', () => {
    // Prepare
    const documents: [string, unknown][] = [
      ...Object.values(resourcesOfType(template, 'AWS::SQS::QueuePolicy')).map((p): [string, unknown] => [
        'queue',
        props(p).PolicyDocument,
      ]),
      ...Object.values(resourcesOfType(template, 'AWS::SNS::TopicPolicy')).map((p): [string, unknown] => [
        'topic',
        props(p).PolicyDocument,
      ]),
      ...Object.values(resourcesOfType(template, 'AWS::KMS::Key')).map((k): [string, unknown] => [
        'key',
        props(k).KeyPolicy,
      ]),
    ];

    // Act
    const wildcardAllows = documents.flatMap(([kind, document]) =>
      statementsOf(document)
        .filter((s) => s.Effect === 'Allow' && asArray(s.Action).some((a) => a.includes('*')))
        .map((s) => ({ kind, principal: render((s.Principal as { AWS?: unknown }).AWS), action: s.Action })),
    );

    // Assess: the account-root statement is the standard KMS key policy that hands the key's
    // administration to the account's IAM policies (without it the key could become unmanageable).
    expect(wildcardAllows).toEqual([
      { kind: 'key', principal: 'arn:<AWS::Partition>:iam::<AWS::AccountId>:root', action: 'kms:*' },
    ]);
  });

  it('lets the api function read keys, write messages, manage suppressions, enqueue on both lanes and run the guard', () => {
    // Act
    const permissions = permissionsOf(template, stack.api.handler.role);

    // Assess
    expect(permissions).toEqual({
      ...logs(stack.api.handler),
      // Scan and UpdateItem: the guard's decisions, written onto the keys of a key or tenant.
      [tables.apiKeys]: ['dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
      // Counters (ADD), event markers, tenant state, evaluation claims, the held-mail index.
      [tables.guard]: [
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ],
      // Held jobs: read back and deleted on release or cancel (operator routes); put is payloads/*.
      [`${ref(logicalIdOf(stack.payloads.bucket))}/payloads/held/*`]: ['s3:DeleteObject', 's3:GetObject'],
      [tables.messages]: ['dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan'],
      [tables.suppressions]: [
        'dynamodb:BatchGetItem',
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Scan',
      ],
      [tables.stats]: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
      [tables.idempotency]: [
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
      ],
      [ref(logicalIdOf(stack.lanes.transactional.queue.queue))]: ['sqs:SendMessage'],
      [ref(logicalIdOf(stack.lanes.broadcast.queue.queue))]: ['sqs:SendMessage'],
      [`${ref(logicalIdOf(stack.payloads.bucket))}/payloads/*`]: ['s3:PutObject'],
      [ref(logicalIdOf(stack.erasure.queue.queue))]: ['sqs:SendMessage'],
      [ref(logicalIdOf(stack.erasure.secret))]: ['secretsmanager:GetSecretValue'],
      // Webhooks: endpoints managed, events published, replayed and listed, attempts listed, the
      // replay budget taken.
      [tables.webhooks]: [
        'dynamodb:BatchWriteItem',
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ],
      [webhookQueue]: ['sqs:SendMessage'],
    });
  });

  it.each(LANES)(
    'lets the %s sender drain only its own queue, send only through Baton’s identity and keep (or drop) held jobs',
    (lane) => {
      // Act
      const sender = stack.lanes[lane].sender;
      const permissions = permissionsOf(template, sender.role);

      // Assess
      expect(permissions).toEqual({
        ...logs(sender),
        [ref(logicalIdOf(stack.lanes[lane].queue.queue))]: [
          'sqs:ChangeMessageVisibility',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
          'sqs:ReceiveMessage',
        ],
        [tables.messages]: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        [tables.suppressions]: ['dynamodb:BatchGetItem'],
        [tables.stats]: ['dynamodb:UpdateItem'],
        // The abuse guard's re-check of each job's key: one item by id, nothing else.
        [tables.apiKeys]: ['dynamodb:GetItem'],
        [`${ACCOUNT_ARN}:identity/${ref(logicalIdOf(primaryIdentity(stack)))}`]: [
          'ses:SendEmail',
          'ses:SendRawEmail',
        ],
        [`${ACCOUNT_ARN}:configuration-set/${ref(logicalIdOf(stack.ses.configurationSet))}`]: [
          'ses:SendEmail',
          'ses:SendRawEmail',
        ],
        [`${ref(logicalIdOf(stack.payloads.bucket))}/payloads/*`]: ['s3:GetObject'],
        [ref(logicalIdOf(stack.erasure.secret))]: ['secretsmanager:GetSecretValue'],
        // The guard's state is read from the job's key; a message held at send is kept.
        [tables.apiKeys]: ['dynamodb:GetItem'],
        [tables.guard]: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem'],
        [`${ref(logicalIdOf(stack.payloads.bucket))}/payloads/held/*`]: ['s3:DeleteObject', 's3:PutObject'],
        ...publishing(),
      });
    },
  );

  it.each(LANES)('confines the %s sender to the held-mail index of the guard table', (lane) => {
    // Prepare
    const role = ref(logicalIdOf(stack.lanes[lane].sender.role));
    const statements = Object.values(resourcesOfType(template, 'AWS::IAM::Policy'))
      .filter((policy) =>
        asArray(props(policy).Roles as unknown[])
          .map(render)
          .includes(role),
      )
      .flatMap((policy) => statementsOf(props(policy).PolicyDocument));

    // Act
    const onGuard = statements.filter((s) => asArray(s.Resource).map(render).includes(tables.guard));

    // Assess: counters, markers and tenant state are out of its reach, whatever the code does.
    expect(onGuard).toHaveLength(1);
    expect(onGuard[0]?.Condition).toEqual({
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['held:*'] },
    });
  });

  it('lets the feedback function drain its queue, look messages up by SES id and maintain suppressions', () => {
    // Act
    const permissions = permissionsOf(template, stack.feedback.handler.role);

    // Assess
    expect(permissions).toEqual({
      ...logs(stack.feedback.handler),
      [ref(logicalIdOf(stack.feedback.queue.queue))]: [
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:ReceiveMessage',
      ],
      [tables.messages]: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      [`${tables.messages}/index/${Keys.messages.sesMessageIdIndex}`]: ['dynamodb:Query'],
      [tables.suppressions]: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      [tables.stats]: ['dynamodb:UpdateItem'],
      [ref(logicalIdOf(stack.erasure.secret))]: ['secretsmanager:GetSecretValue'],
      // The guard: counting feedback once per event, evaluating, applying decisions to the keys.
      [tables.guard]: [
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ],
      [tables.apiKeys]: ['dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
      ...publishing(),
    });
  });

  it('lets the erasure worker drain and refill its own queue, scan and rewrite messages, and read the secret', () => {
    // Act
    const permissions = permissionsOf(template, stack.erasure.worker.role);

    // Assess
    expect(permissions).toEqual({
      ...logs(stack.erasure.worker),
      [ref(logicalIdOf(stack.erasure.queue.queue))]: [
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:ReceiveMessage',
        'sqs:SendMessage',
      ],
      [tables.messages]: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan'],
      [ref(logicalIdOf(stack.erasure.secret))]: ['secretsmanager:GetSecretValue'],
    });
  });

  it('gives every function a role of its own', () => {
    // Act
    const roles = Object.values(resourcesOfType(template, 'AWS::Lambda::Function')).map((fn: CfnResource) =>
      render(props(fn).Role),
    );

    // Assess
    expect(new Set(roles).size).toBe(roles.length);
  });
});

describe('sender permissions with several sending domains', () => {
  const sesPermissions = (template: Template, role: IRole): Record<string, string[]> =>
    Object.fromEntries(
      Object.entries(permissionsOf(template, role)).filter(([, actions]) =>
        actions.some((a) => a.startsWith('ses:')),
      ),
    );

  it('grants exactly the created and imported identities and the configuration set, nothing wider', () => {
    // Prepare
    const { template, stack } = synthTemplate({
      context: {
        domain: 'mail.example.com',
        domains: 'mail.example.com,news.example.org,legacy.example.net',
        importDomains: 'legacy.example.net',
      },
    });
    const created = stack.ses.identities.flatMap((i) => (i.created ? [i.created.identity] : []));

    // Act
    const permissions = sesPermissions(template, stack.lanes.transactional.sender.role);

    // Assess
    const both = ['ses:SendEmail', 'ses:SendRawEmail'];
    expect(created).toHaveLength(2);
    expect(permissions).toEqual({
      ...Object.fromEntries(
        created.map((identity) => [`${ACCOUNT_ARN}:identity/${ref(logicalIdOf(identity))}`, both]),
      ),
      [`${ACCOUNT_ARN}:identity/legacy.example.net`]: both,
      [`${ACCOUNT_ARN}:configuration-set/${ref(logicalIdOf(stack.ses.configurationSet))}`]: both,
    });
  });

  it('in the SES sandbox also grants the listed recipient identities, which SES checks there', () => {
    // Prepare
    const { template, stack } = synthTemplate({
      context: { sandbox: 'true', sandboxRecipients: 'qa@example.org,test.example.net' },
    });

    // Act
    const permissions = sesPermissions(template, stack.lanes.broadcast.sender.role);

    // Assess
    expect(Object.keys(permissions).sort()).toEqual(
      [
        `${ACCOUNT_ARN}:configuration-set/${ref(logicalIdOf(stack.ses.configurationSet))}`,
        `${ACCOUNT_ARN}:identity/${ref(logicalIdOf(primaryIdentity(stack)))}`,
        `${ACCOUNT_ARN}:identity/qa@example.org`,
        `${ACCOUNT_ARN}:identity/test.example.net`,
      ].sort(),
    );
  });
});
