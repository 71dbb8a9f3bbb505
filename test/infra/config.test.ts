import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../lib/app.ts';
import {
  BatonConfigError,
  CONFIG_DEFAULTS,
  CONTEXT_KEYS,
  configFromContext,
  eventSourceConcurrency,
  INVOCATION_RESERVE_SECONDS,
  LAMBDA_MAX_TIMEOUT_SECONDS,
  laneSendPlans,
  MAX_SENDING_DOMAINS,
  NEW_ACCOUNT_LAMBDA_CONCURRENCY,
  resolveConfig,
  SEND_WORK_SECONDS,
  SENDS_PER_SENDER_INSTANCE,
} from '../../lib/config.ts';
import { REPO_ROOT } from '../../lib/paths.ts';
import { props, resourceOf, synthTemplate } from './support.ts';

describe('BatonConfig', () => {
  it('applies the documented defaults when only the domain is given', () => {
    // Act
    const config = resolveConfig({ domain: 'mail.example.com' });

    // Assess
    expect(config).toEqual({
      domain: 'mail.example.com',
      domains: ['mail.example.com'],
      importDomains: [],
      sandbox: false,
      sandboxRecipients: [],
      lambdaConcurrency: 1000,
      alarmEmail: undefined,
      retentionDays: 30,
      maxSendRate: 14,
      transactionalShare: 0.7,
      mailFromSubdomain: 'bounce',
      logRetentionDays: 30,
      apiRateLimit: 50,
      apiBurstLimit: 100,
      smtp: false,
      smtpCertificateSecret: undefined,
      smtpCertificateKey: undefined,
      smtpHostname: 'smtp.mail.example.com',
      smtpMaxTasks: 4,
      webhookMaxConcurrency: 10,
      doctorSchedule: false,
    });
    expect(CONFIG_DEFAULTS.retentionDays).toBe(30);
  });

  it('refuses to synthesize without a domain and says how to set one', () => {
    // Act / Assess
    expect(() => resolveConfig({})).toThrow(BatonConfigError);
    expect(() => resolveConfig({})).toThrow(
      'Invalid Baton setting "domain": the SES sending domain is required (for example mail.example.com). ' +
        'Set it with `npx cdk deploy -c domain=your.domain`.',
    );
  });

  it('fails createApp when no domain is in the context', () => {
    // Act / Assess
    expect(() => createApp({ bundle: false, nag: false })).toThrow(/npx cdk deploy -c domain=your\.domain/);
  });

  it.each([
    ['an IP address', '192.0.2.1'],
    ['a single label', 'localhost'],
    ['a label starting with a hyphen', '-mail.example.com'],
    ['an email address', 'ops@example.com'],
    ['an underscore', 'mail_out.example.com'],
  ])('rejects %s as the domain', (_label, domain) => {
    // Act / Assess
    expect(() => resolveConfig({ domain })).toThrow(
      `Invalid Baton setting "domain": ${JSON.stringify(domain)} is not a valid domain name`,
    );
  });

  it('normalises the domain to lower case', () => {
    // Act
    const config = resolveConfig({ domain: ' Mail.Example.COM ' });

    // Assess
    expect(config.domain).toBe('mail.example.com');
  });

  it.each([
    ['zero', 0],
    ['a negative rate', -3],
    ['text', 'fast'],
    ['infinity', 'Infinity'],
  ])('rejects %s as maxSendRate with the setting name and an example', (_label, maxSendRate) => {
    // Act / Assess
    expect(() => resolveConfig({ domain: 'example.com', maxSendRate })).toThrow(
      `Invalid Baton setting "maxSendRate": must be a number greater than 0 and at most 100000, got ${JSON.stringify(maxSendRate)}. ` +
        'Set it with `npx cdk deploy -c maxSendRate=14`.',
    );
  });

  it('treats a blank value from `-c maxSendRate=` as unset', () => {
    // Act
    const config = resolveConfig({ domain: 'example.com', maxSendRate: ' ' });

    // Assess
    expect(config.maxSendRate).toBe(CONFIG_DEFAULTS.maxSendRate);
  });

  it('coerces numbers given as strings on the command line', () => {
    // Act
    const config = resolveConfig({
      domain: 'example.com',
      maxSendRate: '40',
      retentionDays: '90',
      logRetentionDays: '7',
    });

    // Assess
    expect(config.maxSendRate).toBe(40);
    expect(config.retentionDays).toBe(90);
    expect(config.logRetentionDays).toBe(7);
  });

  it.each([0, 3651, 2.5])('rejects retentionDays %s', (retentionDays) => {
    // Act / Assess
    expect(() => resolveConfig({ domain: 'example.com', retentionDays })).toThrow(
      /Invalid Baton setting "retentionDays": must be an integer between 1 and 3650/,
    );
  });

  it('rejects a log retention that CloudWatch Logs does not offer', () => {
    // Act / Assess
    expect(() => resolveConfig({ domain: 'example.com', logRetentionDays: 31 })).toThrow(
      /Invalid Baton setting "logRetentionDays": 31 is not a retention CloudWatch Logs accepts \(one of 1, 3, 5, 7, 14, 30,/,
    );
  });

  it('rejects an alarm email that is not an address', () => {
    // Act / Assess
    expect(() => resolveConfig({ domain: 'example.com', alarmEmail: 'ops at example.com' })).toThrow(
      'Invalid Baton setting "alarmEmail": "ops at example.com" is not an email address. ' +
        'Set it with `npx cdk deploy -c alarmEmail=ops@example.com`.',
    );
  });

  it('rejects a MAIL FROM subdomain that is not a single DNS label', () => {
    // Act / Assess
    expect(() => resolveConfig({ domain: 'example.com', mailFromSubdomain: 'a.b' })).toThrow(
      /Invalid Baton setting "mailFromSubdomain": "a\.b" must be a single DNS label/,
    );
  });

  it('rejects a transactional share that would let broadcast outrank transactional', () => {
    // Act / Assess
    expect(() => resolveConfig({ domain: 'example.com', transactionalShare: 0.4 })).toThrow(
      /Invalid Baton setting "transactionalShare": must be a number between 0.5 and 0.95, got 0.4/,
    );
  });

  it('reads every setting from CDK context', () => {
    // Prepare
    const app = new App({
      context: {
        domain: 'mail.example.org',
        domains: 'news.example.org,mail.example.org',
        importDomains: 'news.example.org',
        sandbox: 'true',
        sandboxRecipients: 'qa@example.org',
        lambdaConcurrency: '50',
        alarmEmail: 'ops@example.org',
        retentionDays: '7',
        maxSendRate: '100',
        transactionalShare: '0.8',
        mailFromSubdomain: 'mx',
        logRetentionDays: '90',
        apiRateLimit: '20',
        apiBurstLimit: '40',
        smtp: 'true',
        smtpCertificateSecret: 'baton/smtp-tls',
        smtpCertificateKey: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        smtpHostname: 'Relay.Example.org',
        smtpMaxTasks: '6',
        webhookMaxConcurrency: '12',
        doctorSchedule: 'true',
      },
    });

    // Act
    const config = configFromContext(app.node);

    // Assess
    expect(config).toEqual({
      domain: 'mail.example.org',
      domains: ['mail.example.org', 'news.example.org'],
      importDomains: ['news.example.org'],
      sandbox: true,
      sandboxRecipients: ['qa@example.org'],
      lambdaConcurrency: 50,
      alarmEmail: 'ops@example.org',
      retentionDays: 7,
      maxSendRate: 100,
      transactionalShare: 0.8,
      mailFromSubdomain: 'mx',
      logRetentionDays: 90,
      apiRateLimit: 20,
      apiBurstLimit: 40,
      smtp: true,
      smtpCertificateSecret: 'baton/smtp-tls',
      smtpCertificateKey: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      smtpHostname: 'relay.example.org',
      smtpMaxTasks: 6,
      webhookMaxConcurrency: 12,
      doctorSchedule: true,
    });
  });
});

describe('SMTP settings', () => {
  it('takes a certificate secret by name or by ARN', () => {
    // Act
    const byName = resolveConfig({
      domain: 'example.com',
      smtp: true,
      smtpCertificateSecret: 'baton/smtp-tls',
    });
    const byArn = resolveConfig({
      domain: 'example.com',
      smtp: 'true',
      smtpCertificateSecret: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:baton/smtp-tls-AbCdEf',
    });

    // Assess
    expect(byName.smtpCertificateSecret).toBe('baton/smtp-tls');
    expect(byArn.smtpCertificateSecret).toBe(
      'arn:aws:secretsmanager:us-east-1:111122223333:secret:baton/smtp-tls-AbCdEf',
    );
  });

  it('refuses SMTP settings while smtp is off, saying to turn it on', () => {
    // Act / Assess
    expect(() => resolveConfig({ domain: 'example.com', smtpCertificateSecret: 'baton/smtp-tls' })).toThrow(
      'Invalid Baton setting "smtpCertificateSecret": configures the SMTP front door, which is off; turn it on ' +
        'with smtp=true as well. Set it with `npx cdk deploy -c smtp=true -c smtpCertificateSecret=...`.',
    );
    expect(() => resolveConfig({ domain: 'example.com', smtp: 'false', smtpMaxTasks: '3' })).toThrow(
      /"smtpMaxTasks": configures the SMTP front door, which is off/,
    );
  });

  it('refuses a certificate secret that is neither a name nor an ARN, and a key without a secret', () => {
    // Act / Assess
    expect(() =>
      resolveConfig({ domain: 'example.com', smtp: true, smtpCertificateSecret: 'my cert!' }),
    ).toThrow(
      'Invalid Baton setting "smtpCertificateSecret": "my cert!" is neither a Secrets Manager secret name nor a secret ARN',
    );
    expect(() =>
      resolveConfig({ domain: 'example.com', smtp: true, smtpCertificateSecret: 'arn:aws:s3:::bucket/cert' }),
    ).toThrow(/"smtpCertificateSecret": "arn:aws:s3:::bucket\/cert" is neither/);
    expect(() =>
      resolveConfig({
        domain: 'example.com',
        smtp: true,
        smtpCertificateKey: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      }),
    ).toThrow(
      /"smtpCertificateKey": names the KMS key of the certificate secret, so it needs smtpCertificateSecret/,
    );
    expect(() =>
      resolveConfig({
        domain: 'example.com',
        smtp: true,
        smtpCertificateSecret: 'baton/smtp-tls',
        smtpCertificateKey: 'alias/aws/secretsmanager',
      }),
    ).toThrow(/"smtpCertificateKey": "alias\/aws\/secretsmanager" is not a KMS key ARN/);
  });

  it('refuses fewer than two tasks at most, and a greeting name that is not a host name', () => {
    // Act / Assess
    expect(() => resolveConfig({ domain: 'example.com', smtp: true, smtpMaxTasks: '1' })).toThrow(
      /"smtpMaxTasks": must be an integer between 2 and 100, got "1"/,
    );
    expect(() => resolveConfig({ domain: 'example.com', smtp: true, smtpHostname: 'localhost' })).toThrow(
      /"smtpHostname": "localhost" is not a host name/,
    );
  });
});

describe('laneSendPlans', () => {
  it('gives transactional at least as many senders as broadcast, and the larger rate, at the default SES rate', () => {
    // Act
    const [transactional, broadcast] = laneSendPlans({ maxSendRate: 14, transactionalShare: 0.7 });

    // Assess
    expect(transactional).toMatchObject({ lane: 'transactional', sendRate: 9.8, maxConcurrency: 2 });
    expect(broadcast).toMatchObject({ lane: 'broadcast', sendRate: 4.2, maxConcurrency: 2 });
  });

  it('sizes each sender to send a whole batch of 50-recipient messages before its timeout, at 14 and at the sandbox’s 1', () => {
    // Act
    const sizes = [14, 1].map((maxSendRate) =>
      laneSendPlans({ maxSendRate, transactionalShare: 0.7 }).map(({ lane, batchSize, timeoutSeconds }) => ({
        lane,
        batchSize,
        timeoutSeconds,
      })),
    );

    // Assess: per sender 4.9, 2.1, 0.35 and 0.15 recipients/s. 50 recipients take 10.2 and 23.8 s of pace, but
    // only 5 and 2 of them fit a 60 s window (294, 126): 12 and 30 s each; in the sandbox one message is more
    // than a window's budget and costs its pace, 142.9 and 333.3 s. Plus 1 s of work each and 10 s per batch,
    // and where a message's pace is shorter than the window, the rest of the window the sender's earlier
    // sends may still fill (48 and 30 s).
    expect(sizes).toEqual([
      [
        { lane: 'transactional', batchSize: 10, timeoutSeconds: 188 },
        { lane: 'broadcast', batchSize: 10, timeoutSeconds: 350 },
      ],
      [
        { lane: 'transactional', batchSize: 6, timeoutSeconds: 874 },
        { lane: 'broadcast', batchSize: 2, timeoutSeconds: 679 },
      ],
    ]);
  });

  it.each([0.5, 1, 2, 3, 14, 50, 333, 5000])(
    'never gives a sender at maxSendRate %s more 50-recipient messages than its timeout can pace',
    (maxSendRate) => {
      // Act
      const plans = laneSendPlans({ maxSendRate, transactionalShare: 0.7 });

      // Assess
      for (const plan of plans) {
        const perMessage = 50 / (plan.sendRate / plan.maxConcurrency) + SEND_WORK_SECONDS;
        expect(plan.batchSize).toBeGreaterThanOrEqual(1);
        expect(plan.batchSize).toBeLessThanOrEqual(10);
        expect(plan.batchSize * perMessage + INVOCATION_RESERVE_SECONDS).toBeLessThanOrEqual(
          plan.timeoutSeconds,
        );
        expect(plan.timeoutSeconds).toBeGreaterThanOrEqual(30);
        expect(plan.timeoutSeconds).toBeLessThanOrEqual(LAMBDA_MAX_TIMEOUT_SECONDS);
      }
    },
  );

  it('refuses a share so small that one sender could not send a 50-recipient message within 900 s', () => {
    // Act
    const plan = () => laneSendPlans({ maxSendRate: 0.3, transactionalShare: 0.7 });

    // Assess: broadcast gets 0.09/s over two senders, 0.045/s each: 50 recipients take 1111 s.
    expect(plan).toThrow(
      new BatonConfigError(
        'maxSendRate',
        "the broadcast lane's share gives each of its senders 0.045 recipients per second, too slow to send " +
          "one 50-recipient message within Lambda's 900 s (raise maxSendRate, or move transactionalShare " +
          'towards one half)',
        'maxSendRate=14',
      ),
    );
  });

  it.each([1, 14, 50, 333, 5000])('never hands out more than maxSendRate %s in total', (maxSendRate) => {
    // Act
    const plans = laneSendPlans({ maxSendRate, transactionalShare: 0.7 });

    // Assess
    const total = plans.reduce((sum, plan) => sum + plan.sendRate, 0);
    expect(total).toBeLessThanOrEqual(maxSendRate);
    for (const plan of plans) {
      expect(plan.maxConcurrency).toBeGreaterThanOrEqual(2);
      expect(plan.maxConcurrency).toBeLessThanOrEqual(1000);
      expect(plan.maxConcurrency).toBeGreaterThanOrEqual(
        Math.min(1000, Math.ceil(plan.sendRate / SENDS_PER_SENDER_INSTANCE)),
      );
    }
  });

  it('caps concurrency at the Lambda maximum of 1000 for very high send rates', () => {
    // Act
    const plans = laneSendPlans({ maxSendRate: 100_000, transactionalShare: 0.7 });

    // Assess
    expect(plans.map((plan) => plan.maxConcurrency)).toEqual([1000, 1000]);
  });
});

describe('sending domains', () => {
  it('takes a list of domains, the first one primary, with domain as a one-domain shorthand', () => {
    // Act
    const listed = resolveConfig({ domains: ' News.Example.org, mail.example.com ,news.example.org' });
    const single = resolveConfig({ domain: 'mail.example.com' });

    // Assess
    expect([listed.domain, listed.domains]).toEqual([
      'news.example.org',
      ['news.example.org', 'mail.example.com'],
    ]);
    expect([single.domain, single.domains]).toEqual(['mail.example.com', ['mail.example.com']]);
  });

  it('lets domains win over domain, which stays primary and must be among them', () => {
    // Act
    const both = resolveConfig({
      domain: 'mail.example.com',
      domains: ['news.example.org', 'mail.example.com'],
    });

    // Assess
    expect([both.domain, both.domains]).toEqual([
      'mail.example.com',
      ['mail.example.com', 'news.example.org'],
    ]);
    expect(() => resolveConfig({ domain: 'other.example.com', domains: 'news.example.org' })).toThrow(
      'Invalid Baton setting "domains": must contain domain "other.example.com" when both are given ' +
        '(domains wins; got news.example.org). Set it with `npx cdk deploy -c domains=other.example.com,news.example.org`.',
    );
  });

  it('refuses an invalid entry of domains, naming it', () => {
    // Act / Assess
    expect(() => resolveConfig({ domains: 'mail.example.com,localhost' })).toThrow(
      'Invalid Baton setting "domains": "localhost" is not a valid domain name',
    );
  });

  it('refuses more domains than one stack can publish the DNS records of', () => {
    // Prepare
    const domains = Array.from({ length: MAX_SENDING_DOMAINS + 1 }, (_, i) => `d${i}.example.com`).join(',');

    // Act / Assess
    expect(() => resolveConfig({ domains })).toThrow(
      `Invalid Baton setting "domains": lists ${MAX_SENDING_DOMAINS + 1} domains, more than the ${MAX_SENDING_DOMAINS} one stack`,
    );
    expect(resolveConfig({ domains: domains.replace(/,[^,]+$/, '') }).domains).toHaveLength(
      MAX_SENDING_DOMAINS,
    );
  });

  it('imports only domains that are among the sending domains', () => {
    // Act
    const config = resolveConfig({ domains: 'a.example.com,b.example.com', importDomains: 'B.example.com' });

    // Assess
    expect(config.importDomains).toEqual(['b.example.com']);
    expect(() => resolveConfig({ domain: 'a.example.com', importDomains: 'c.example.com' })).toThrow(
      'Invalid Baton setting "importDomains": names c.example.com, which is not among the sending domains (a.example.com)',
    );
  });
});

describe('SES sandbox setting', () => {
  it('defaults maxSendRate to the sandbox’s one message per second unless one is given', () => {
    // Act
    const sandbox = resolveConfig({
      domain: 'example.com',
      sandbox: 'true',
      sandboxRecipients: 'QA@Example.ORG,Test.Example.net',
    });
    const given = resolveConfig({ domain: 'example.com', sandbox: true, maxSendRate: '2' });

    // Assess
    // An address keeps its local part as written; domains are lower-cased.
    expect([sandbox.sandbox, sandbox.maxSendRate, sandbox.sandboxRecipients]).toEqual([
      true,
      1,
      ['QA@example.org', 'test.example.net'],
    ]);
    expect(given.maxSendRate).toBe(2);
  });

  it('refuses sandbox recipients without sandbox, and anything that is not an address or domain', () => {
    // Act / Assess
    expect(() => resolveConfig({ domain: 'example.com', sandboxRecipients: 'qa@example.org' })).toThrow(
      'Invalid Baton setting "sandboxRecipients": lists recipients for an account in the SES sandbox, so it needs sandbox=true as well',
    );
    expect(() => resolveConfig({ domain: 'example.com', sandbox: 'yes' })).toThrow(
      'Invalid Baton setting "sandbox": must be true or false, got "yes"',
    );
    expect(() =>
      resolveConfig({ domain: 'example.com', sandbox: 'true', sandboxRecipients: 'not an address' }),
    ).toThrow(
      'Invalid Baton setting "sandboxRecipients": "not an address" is neither an email address nor a domain',
    );
  });
});

describe('Lambda concurrency', () => {
  it('caps every event source by default: the lanes and feedback by the send rate, erasure 2, webhook delivery 10', () => {
    // Act
    const plan = eventSourceConcurrency(resolveConfig({ domain: 'example.com' }));

    // Assess
    expect(plan).toEqual({
      lanes: { transactional: 2, broadcast: 2 },
      feedback: 2,
      erasure: 2,
      webhooks: 10,
      eventSources: 18,
      apiReserve: 2,
    });
  });

  it('no longer fits a new account’s 10 concurrent executions, even with the least webhook concurrency', () => {
    // Act / Assess: five consumers at Lambda's least (2 each) plus the api's reserve make 12.
    expect(() =>
      resolveConfig({
        domain: 'example.com',
        sandbox: 'true',
        webhookMaxConcurrency: '2',
        lambdaConcurrency: String(NEW_ACCOUNT_LAMBDA_CONCURRENCY),
      }),
    ).toThrow(
      /needs? up to 10 concurrent Lambda executions for the queue consumers plus 2 for the api \(12\)/,
    );
  });

  it('refuses a send rate whose consumers the account’s quota would throttle, saying what to request', () => {
    // Act / Assess
    expect(() =>
      resolveConfig({ domain: 'example.com', maxSendRate: '50', lambdaConcurrency: '10' }),
    ).toThrow(
      'Invalid Baton setting "lambdaConcurrency": maxSendRate 50 and webhookMaxConcurrency 10 need up to 24 ' +
        'concurrent Lambda executions for the queue consumers plus 2 for the api (26), more than the ' +
        "account's 10. Request an increase of " +
        '"Concurrent executions" (Service Quotas, AWS Lambda) to at least 26 and set lambdaConcurrency to the ' +
        'granted value, or lower maxSendRate or webhookMaxConcurrency. Set it with `npx cdk deploy -c lambdaConcurrency=1000`.',
    );
  });

  it.each(['1', '1001', '2.5', 'ten'])('refuses webhookMaxConcurrency %s, naming the range', (value) => {
    // Act / Assess
    expect(() => resolveConfig({ domain: 'example.com', webhookMaxConcurrency: value })).toThrow(
      `Invalid Baton setting "webhookMaxConcurrency": must be an integer between 2 and 1000, got "${value}"`,
    );
  });

  it('caps the feedback consumer by the send rate instead of a fixed five', () => {
    // Act
    const { template, stack } = synthTemplate({ context: { maxSendRate: '200' } });
    const mapping = resourceOf(template, stack.feedback.eventSourceMapping);

    // Assess
    expect(props(mapping).ScalingConfig).toEqual({ MaximumConcurrency: 20 });
  });
});

describe('docs/settings.md', () => {
  it('documents every setting configFromContext reads', () => {
    // Prepare
    const section = readFileSync(join(REPO_ROOT, 'docs', 'settings.md'), 'utf8');

    // Act
    const missing = CONTEXT_KEYS.filter((key) => !section.includes(`\`${key}\``));

    // Assess
    expect(missing).toEqual([]);
  });
});
