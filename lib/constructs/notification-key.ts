import { Aws, Duration } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

/**
 * The customer managed key that encrypts Baton's SNS topics.
 *
 * An AWS managed key (`alias/aws/sns`) cannot be used here: its key policy cannot be changed, so
 * neither SES nor CloudWatch could publish to a topic encrypted with it. One key serves both topics
 * (a key costs a dollar a month); each publishing service is admitted only on behalf of this account
 * and only from the resources named with `allowServicePublisher`.
 */
export class NotificationKey extends Construct {
  readonly key: Key;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    // The key policy keeps the CDK default account-root statement: it delegates key administration
    // to the account's IAM policies, without which the key could become unmanageable.
    this.key = new Key(this, 'Key', {
      description: 'Encrypts the Baton SES feedback and alarm SNS topics',
      enableKeyRotation: true,
      pendingWindow: Duration.days(30),
    });
  }

  /**
   * Lets an AWS service publish to a topic encrypted with this key: SNS needs the publisher to be
   * able to create and read the data key. `sourceArn` may contain `*` (matched with ArnLike), e.g.
   * every CloudWatch alarm of the account.
   *
   * The statement is the one the SNS Developer Guide gives for AWS services (SES among them,
   * `ses.amazonaws.com`) publishing to an encrypted topic: "Key management", section "Enable
   * compatibility between event sources from AWS services and encrypted topics",
   * https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
   * (Principal the service, Action `kms:GenerateDataKey*` and `kms:Decrypt`, Resource `*`), with two
   * narrowings: the action is spelt out, as no Baton policy grants a wildcard action (iam.test.ts),
   * and `kms:GenerateDataKey` is the variant SNS calls for a publisher; and the confused deputy is
   * kept out with `aws:SourceAccount` and `aws:SourceArn` (for SES the configuration set, as in
   * the topic policy SES's event destination needs). A key policy SES
   * cannot use fails silently (SES drops the events), which is what the NoFeedback alarm
   * (monitoring.ts) is for.
   */
  allowServicePublisher(service: string, sourceArn: string): void {
    if (!/^[a-z0-9-]+\.amazonaws\.com$/.test(service)) {
      throw new Error(`NotificationKey: "${service}" is not an AWS service principal`);
    }
    this.key.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal(service)],
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: { 'aws:SourceArn': sourceArn },
        },
      }),
    );
  }
}
