import { CfnResource } from 'aws-cdk-lib';
import { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { LANES } from '../../lambdas/shared/names.ts';
import type { BatonApp } from '../../lib/app.ts';
import { API_DLQ_REASON } from '../../lib/constructs/api-handler.ts';
import { NO_TRACING_REASON } from '../../lib/constructs/baton-function.ts';
import { ALARM_EMAIL_REDRIVE_REASON } from '../../lib/constructs/monitoring.ts';
import {
  QUEUE_CONSUMER_DESTINATION_REASON,
  QUEUE_CONSUMER_DLQ_REASON,
} from '../../lib/constructs/queue-consumer.ts';
import { DEAD_LETTER_QUEUE_REDRIVE_REASON } from '../../lib/constructs/secure-queue.ts';
import {
  type Acknowledgement,
  acknowledgementsOf,
  asArray,
  buildBaton,
  logicalIdOf,
  props,
  resourcesOfType,
  statementsOf,
  synthTemplate,
  validationReportOf,
} from './support.ts';

const serverless = (acknowledgements: Acknowledgement[]): Acknowledgement[] =>
  acknowledgements.filter(({ id }) => id.startsWith('Annotation::Serverless-'));

const byPathAndId = (a: Acknowledgement, b: Acknowledgement): number =>
  `${a.path} ${a.id}`.localeCompare(`${b.path} ${b.id}`);

const ack = (construct: IConstruct, rule: string, reason: string): Acknowledgement => ({
  path: construct.node.path,
  id: `Annotation::Serverless-${rule}`,
  reason,
});

/**
 * cdk-nag's Serverless rule pack, which runs beside AWS Solutions whenever nag is on. That synthesis
 * passes both packs with no finding left is synth.test.ts's (with bundling); here, what was
 * acknowledged: acknowledgements are construct metadata, recorded as the stack is built.
 */
describe('cdk-nag Serverless checks', () => {
  let baton: BatonApp;

  beforeAll(() => {
    baton = buildBaton({ nag: true });
  });

  it('acknowledges exactly the findings that do not apply, each on its own resource with its reason', () => {
    // Prepare
    const { stack } = baton;
    const consumers = [
      ...LANES.map((lane) => ({
        queue: stack.lanes[lane].queue,
        fn: stack.lanes[lane].sender,
        mapping: stack.lanes[lane].eventSourceMapping,
      })),
      { queue: stack.feedback.queue, fn: stack.feedback.handler, mapping: stack.feedback.eventSourceMapping },
      { queue: stack.erasure.queue, fn: stack.erasure.worker, mapping: stack.erasure.eventSourceMapping },
      { queue: stack.webhooks.queue, fn: stack.webhooks.handler, mapping: stack.webhooks.eventSourceMapping },
    ];
    const expected = [
      ...consumers.flatMap(({ queue, fn, mapping }) => [
        ack(queue.deadLetterQueue, 'SQSRedrivePolicy', DEAD_LETTER_QUEUE_REDRIVE_REASON),
        ack(fn.function, 'LambdaTracing', NO_TRACING_REASON),
        ack(fn.function, 'LambdaDLQ', QUEUE_CONSUMER_DLQ_REASON),
        ack(mapping, 'LambdaEventSourceMappingDestination', QUEUE_CONSUMER_DESTINATION_REASON),
      ]),
      ack(stack.api.handler.function, 'LambdaTracing', NO_TRACING_REASON),
      ack(stack.api.handler.function, 'LambdaDLQ', API_DLQ_REASON),
    ];

    // Act
    const acknowledgements = serverless(acknowledgementsOf(baton));

    // Assess
    expect(acknowledgements.toSorted(byPathAndId)).toEqual(expected.toSorted(byPathAndId));
  });

  it('records every acknowledgement, of either pack, on a single resource, never on a stack or group', () => {
    // Act
    const scopes = acknowledgementsOf(baton).map(({ path }) => {
      const construct = baton.app.node
        .findChild('Baton')
        .node.findAll()
        .find((c) => c.node.path === path);
      return {
        path,
        resource: construct instanceof CfnResource || construct?.node.defaultChild instanceof CfnResource,
      };
    });

    // Assess
    expect(scopes.length).toBeGreaterThan(0);
    expect(scopes.filter(({ resource }) => !resource)).toEqual([]);
  });

  it('gives every acknowledgement a written reason', () => {
    // Act
    const reasons = acknowledgementsOf(baton).map(({ id, reason }) => ({ id, words: reason.split(/\s+/) }));

    // Assess
    for (const { id, words } of reasons) expect(words.length, id).toBeGreaterThanOrEqual(20);
  });

  it('acknowledges only the alarm email subscription’s missing redrive policy when alarms are mailed', () => {
    // Prepare
    const withEmail = buildBaton({ nag: true, context: { alarmEmail: 'ops@example.com' } });

    // Act
    withEmail.app.synth();
    const extra = serverless(acknowledgementsOf(withEmail)).filter(({ path }) =>
      path.startsWith('Baton/Monitoring/'),
    );

    // Assess
    expect(extra).toEqual([
      {
        path: expect.stringMatching(/^Baton\/Monitoring\/AlarmTopic\/.+/),
        id: 'Annotation::Serverless-SNSRedrivePolicy',
        reason: ALARM_EMAIL_REDRIVE_REASON,
      },
    ]);
  });
});

describe('the Serverless findings fixed rather than acknowledged', () => {
  it('dead-letters feedback events SNS cannot deliver into the feedback DLQ, which admits the topic only', () => {
    // Prepare
    const { template, stack } = synthTemplate();
    const dlq = logicalIdOf(stack.feedback.queue.deadLetterQueue);
    const topic = logicalIdOf(stack.ses.feedbackTopic);

    // Act
    const subscription = Object.values(resourcesOfType(template, 'AWS::SNS::Subscription')).find(
      (s) => props(s).Protocol === 'sqs',
    );
    const allows = Object.values(resourcesOfType(template, 'AWS::SQS::QueuePolicy'))
      .filter((policy) =>
        asArray(props(policy).Queues as { Ref?: string }[]).some((queue) => queue.Ref === dlq),
      )
      .flatMap((policy) => statementsOf(props(policy).PolicyDocument))
      .filter((statement) => statement.Effect === 'Allow');

    // Assess
    expect(subscription && props(subscription).RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] },
    });
    expect(allows).toEqual([
      {
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Principal: { Service: 'sns.amazonaws.com' },
        Resource: { 'Fn::GetAtt': [dlq, 'Arn'] },
        Condition: { ArnEquals: { 'aws:SourceArn': { Ref: topic } } },
      },
    ]);
  });
});

describe('Serverless rule pack wiring', () => {
  it('fails synthesis on a Serverless finding, warnings included', () => {
    // Prepare: a queue without a redrive policy (error) and a function without tracing (warning).
    const baton = buildBaton({ nag: true });
    new Queue(baton.stack, 'UnprotectedQueue');
    new CfnFunction(baton.stack, 'UntracedFunction', {
      code: { zipFile: 'export const handler = async () => {};' },
      role: baton.stack.api.handler.role.roleArn,
      runtime: 'nodejs24.x',
      handler: 'index.handler',
      memorySize: 128,
      timeout: 3,
    });

    // Act
    let message = '';
    try {
      baton.app.synth();
    } catch (error) {
      message = (error as Error).message;
    }
    const reportDir = /found in: (\S+)validation-report\.json/.exec(message)?.[1];
    const findings = validationReportOf(reportDir ?? '/nonexistent')
      .pluginReports.filter(({ pluginName }) => pluginName === 'Serverless')
      .flatMap(({ violations }) =>
        violations.flatMap(({ ruleName, severity, violatingConstructs }) =>
          violatingConstructs.map(({ constructPath }) => `${ruleName} ${severity} ${constructPath}`),
        ),
      );

    // Assess
    expect(findings).toEqual(
      expect.arrayContaining([
        'Serverless-SQSRedrivePolicy error Baton/UnprotectedQueue/Resource',
        'Serverless-LambdaTracing warning Baton/UntracedFunction',
      ]),
    );
  });
});
