import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetEmailIdentityCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import type { CheckResult } from '../../../lambdas/domain/doctor/checks.ts';
import { describeStack, readIdentity, realDeps } from '../../../scripts/doctor-aws.ts';
import { type DoctorDeps, runDoctor } from '../../../scripts/doctor-cli.ts';

const cloudFormation = mockClient(CloudFormationClient);
const ses = mockClient(SESv2Client);

afterEach(() => {
  cloudFormation.reset();
  ses.reset();
});

function stackWith(outputs: Record<string, string>) {
  cloudFormation.on(DescribeStacksCommand, { StackName: 'Baton' }).resolves({
    Stacks: [
      {
        StackName: 'Baton',
        CreationTime: new Date(0),
        StackStatus: 'CREATE_COMPLETE',
        Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
      },
    ],
  });
}

/** The CLI with the real AWS side (clients mocked at the SDK boundary) and captured output. */
async function doctor(args: readonly string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const deps: DoctorDeps = {
    ...realDeps,
    env: { HOME: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent' },
    describeStack,
    readIdentity,
    out: (text) => out.push(text),
    err: (text) => err.push(text),
  };
  const code = await runDoctor(args, deps);
  const checks =
    out.length === 1 && args.includes('--json')
      ? (JSON.parse(out[0] as string) as { checks: CheckResult[] }).checks
      : [];
  return {
    code,
    out: out.join('\n'),
    err: err.join('\n'),
    check: (id: string) => checks.find((c) => c.id === id),
  };
}

const ZONE = 'test/fixtures/doctor/good.zone';

describe('npm run doctor --stack (CloudFormation and SES mocked)', () => {
  it("reads the identity the stack sends for, in the stack's region, and checks SES's own DKIM tokens", async () => {
    // Prepare
    stackWith({ SendingDomains: 'example.com,other.org', Region: 'eu-west-1' });
    ses.on(GetEmailIdentityCommand, { EmailIdentity: 'example.com' }).resolves({
      VerifiedForSendingStatus: true,
      DkimAttributes: { Status: 'SUCCESS', SigningEnabled: true, Tokens: ['tok1', 'tok2', 'tok3'] },
      MailFromAttributes: {
        MailFromDomain: 'bounce.example.com',
        MailFromDomainStatus: 'SUCCESS',
        BehaviorOnMxFailure: 'USE_DEFAULT_VALUE',
      },
    });

    // Act
    const result = await doctor(['example.com', '--stack', 'Baton', '--zone', ZONE, '--json']);

    // Assess
    expect(result.code).toBe(0);
    expect(result.check('ses_identity')?.status).toBe('pass');
    expect(result.check('dkim_cnames')).toMatchObject({
      status: 'pass',
      detail: expect.stringContaining("SES's tokens"),
    });
    expect(result.check('mail_from_mx')?.detail).toContain('region eu-west-1 from stack Baton');
    expect(ses.commandCalls(GetEmailIdentityCommand)).toHaveLength(1);
    expect(await ses.call(0).thisValue.config.region()).toBe('eu-west-1');
  });

  it('uses the nearest sending domain for a subdomain of it', async () => {
    // Prepare
    stackWith({ SendingDomains: 'example.com', Region: 'eu-west-1' });
    ses.on(GetEmailIdentityCommand).resolves({
      VerifiedForSendingStatus: true,
      DkimAttributes: { Status: 'SUCCESS', SigningEnabled: true, Tokens: ['tok1', 'tok2', 'tok3'] },
      MailFromAttributes: {
        MailFromDomain: 'bounce.example.com',
        MailFromDomainStatus: 'SUCCESS',
        BehaviorOnMxFailure: 'USE_DEFAULT_VALUE',
      },
    });

    // Act
    const result = await doctor(['news.example.com', '--stack', 'Baton', '--zone', ZONE, '--json']);

    // Assess
    expect(ses.commandCalls(GetEmailIdentityCommand)[0]?.args[0].input).toEqual({
      EmailIdentity: 'example.com',
    });
    expect(result.check('ses_identity')?.detail).toContain('identity example.com');
  });

  it('fails ses_identity for a domain the stack does not send for, without asking SES', async () => {
    // Prepare
    stackWith({ SendingDomains: 'other.org', Region: 'eu-west-1' });

    // Act
    const result = await doctor(['example.com', '--stack', 'Baton', '--zone', ZONE, '--json']);

    // Assess
    expect(result.code).toBe(1);
    expect(result.check('ses_identity')).toMatchObject({
      status: 'fail',
      detail: 'example.com is not a sending domain of stack Baton (it sends for other.org)',
    });
    expect(ses.commandCalls(GetEmailIdentityCommand)).toHaveLength(0);
  });

  it('fails ses_identity when SES has no such identity', async () => {
    // Prepare
    stackWith({ SendingDomains: 'example.com', Region: 'eu-west-1' });
    ses
      .on(GetEmailIdentityCommand)
      .rejects(Object.assign(new Error('not found'), { name: 'NotFoundException' }));

    // Act
    const result = await doctor(['example.com', '--stack', 'Baton', '--zone', ZONE, '--json']);

    // Assess
    expect(result.check('ses_identity')).toMatchObject({
      status: 'fail',
      detail: 'SES has no identity example.com in this region',
    });
  });

  it('fails ses_identity with the CNAMEs to publish while DKIM has failed', async () => {
    // Prepare
    stackWith({ SendingDomains: 'example.com', Region: 'eu-west-1' });
    ses.on(GetEmailIdentityCommand).resolves({
      VerifiedForSendingStatus: false,
      DkimAttributes: { Status: 'FAILED', SigningEnabled: true, Tokens: ['tok1', 'tok2', 'tok9'] },
      MailFromAttributes: {
        MailFromDomain: 'bounce.example.com',
        MailFromDomainStatus: 'FAILED',
        BehaviorOnMxFailure: 'USE_DEFAULT_VALUE',
      },
    });

    // Act
    const result = await doctor(['example.com', '--stack', 'Baton', '--zone', ZONE, '--json']);

    // Assess
    expect(result.check('ses_identity')?.status).toBe('fail');
    expect(result.check('dkim_cnames')).toMatchObject({
      status: 'fail',
      fix: 'CNAME tok9._domainkey.example.com tok9.dkim.amazonses.com',
    });
  });

  it('exits 2 when the stack does not exist', async () => {
    // Prepare
    cloudFormation
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('Stack with id Nope does not exist'), { name: 'ValidationError' }));

    // Act
    const result = await doctor(['example.com', '--stack', 'Nope', '--region', 'eu-west-1', '--zone', ZONE]);

    // Assess
    expect(result.code).toBe(2);
    expect(result.err).toBe('doctor: there is no stack Nope in eu-west-1');
    expect(result.out).toBe('');
  });

  it('exits 2 naming the error when AWS cannot be reached', async () => {
    // Prepare
    cloudFormation
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('no credentials'), { name: 'CredentialsProviderError' }));

    // Act
    const result = await doctor(['example.com', '--stack', 'Baton', '--zone', ZONE]);

    // Assess
    expect(result.code).toBe(2);
    expect(result.err).toContain(
      'could not read stack Baton from AWS: CredentialsProviderError: no credentials',
    );
  });
});
