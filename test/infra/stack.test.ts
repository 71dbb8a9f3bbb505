import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BatonStack } from '../../lib/baton-stack.ts';
import { logicalIdOf, props, synthTemplate } from './support.ts';

/** Properties that would give a resource a fixed physical name (one stack per account). */
const PHYSICAL_NAME_PROPERTIES = [
  'TableName',
  'QueueName',
  'TopicName',
  'FunctionName',
  'RoleName',
  'LogGroupName',
  'DashboardName',
  'AlarmName',
  'Name',
  'ConfigurationSetName',
];

describe('BatonStack', () => {
  let template: Template;
  let stack: BatonStack;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
  });

  it('synthesizes without CDK warnings', () => {
    // Act
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.anyValue());

    // Assess
    expect(warnings).toEqual([]);
  });

  it('publishes the outputs operators, the README and local mode read', () => {
    // Act
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;

    // Assess
    expect(outputs).toMatchObject({
      ApiUrl: {
        Value: { 'Fn::Join': ['', expect.arrayContaining([{ Ref: logicalIdOf(stack.httpApi.api) }])] },
      },
      Region: { Value: { Ref: 'AWS::Region' } },
      ApiKeysTableName: { Value: { Ref: logicalIdOf(stack.tables.apiKeys) } },
      MessagesTableName: { Value: { Ref: logicalIdOf(stack.tables.messages) } },
      SuppressionsTableName: { Value: { Ref: logicalIdOf(stack.tables.suppressions) } },
      StatsTableName: { Value: { Ref: logicalIdOf(stack.tables.stats) } },
      TransactionalQueueUrl: { Value: { Ref: logicalIdOf(stack.lanes.transactional.queue.queue) } },
      BroadcastQueueUrl: { Value: { Ref: logicalIdOf(stack.lanes.broadcast.queue.queue) } },
      FeedbackTopicArn: { Value: { Ref: logicalIdOf(stack.ses.feedbackTopic) } },
      ConfigurationSetName: { Value: { Ref: logicalIdOf(stack.ses.configurationSet) } },
      DashboardName: { Value: { Ref: logicalIdOf(stack.monitoring.dashboard) } },
    });
  });

  it('tells the operator which DKIM and MAIL FROM records to publish', () => {
    // Act
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;

    // Assess
    for (const index of [1, 2, 3]) {
      expect(JSON.stringify(outputs[`DkimRecord${index}`]?.Value)).toContain(`DkimDNSTokenName${index}`);
    }
    expect(JSON.stringify(outputs.MailFromMxRecord?.Value)).toContain(
      'bounce.example.com MX 10 feedback-smtp.',
    );
  });

  it('names no resource physically, so names never collide and replacements never fail', () => {
    // Act
    const named = Object.entries(template.toJSON().Resources as Record<string, { Type: string }>).flatMap(
      ([id, resource]) =>
        PHYSICAL_NAME_PROPERTIES.filter(
          (property) =>
            props(resource)[property] !== undefined &&
            // References to other resources' names are fine; literal names are not.
            typeof props(resource)[property] === 'string' &&
            !(resource.Type === 'AWS::ApiGatewayV2::Api' && property === 'Name'),
        ).map((property) => `${id}.${property}`),
    );

    // Assess
    expect(named).toEqual([]);
  });
});
