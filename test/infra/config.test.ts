import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../lib/app.ts';
import {
  BatonConfigError,
  CONFIG_DEFAULTS,
  configFromContext,
  INVOCATION_RESERVE_SECONDS,
  LAMBDA_MAX_TIMEOUT_SECONDS,
  laneSendPlans,
  resolveConfig,
  SEND_WORK_SECONDS,
  SENDS_PER_SENDER_INSTANCE,
} from '../../lib/config.ts';

describe('BatonConfig', () => {
  it('applies the documented defaults when only the domain is given', () => {
    // Act
    const config = resolveConfig({ domain: 'mail.example.com' });

    // Assess
    expect(config).toEqual({
      domain: 'mail.example.com',
      alarmEmail: undefined,
      retentionDays: 30,
      maxSendRate: 14,
      transactionalShare: 0.7,
      mailFromSubdomain: 'bounce',
      logRetentionDays: 30,
      apiRateLimit: 50,
      apiBurstLimit: 100,
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
        alarmEmail: 'ops@example.org',
        retentionDays: '7',
        maxSendRate: '100',
        transactionalShare: '0.8',
        mailFromSubdomain: 'mx',
        logRetentionDays: '90',
        apiRateLimit: '20',
        apiBurstLimit: '40',
      },
    });

    // Act
    const config = configFromContext(app.node);

    // Assess
    expect(config).toEqual({
      domain: 'mail.example.org',
      alarmEmail: 'ops@example.org',
      retentionDays: 7,
      maxSendRate: 100,
      transactionalShare: 0.8,
      mailFromSubdomain: 'mx',
      logRetentionDays: 90,
      apiRateLimit: 20,
      apiBurstLimit: 40,
    });
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
    // than a window's budget and costs its pace, 142.9 and 333.3 s. Plus 1 s of work each and 10 s per batch.
    expect(sizes).toEqual([
      [
        { lane: 'transactional', batchSize: 10, timeoutSeconds: 140 },
        { lane: 'broadcast', batchSize: 10, timeoutSeconds: 320 },
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
