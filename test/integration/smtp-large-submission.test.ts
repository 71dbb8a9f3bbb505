import '../support/quiet-powertools.ts';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { SqsJobQueue } from '../../lambdas/adapters/job-queue.ts';
import { PART_BYTES, S3PayloadStore } from '../../lambdas/adapters/payload-store.ts';
import { acceptSubmission } from '../../lambdas/domain/send/accept.ts';
import { readSubmission } from '../../lambdas/domain/smtp/submission.ts';
import { createSender } from '../../lambdas/sender/app.ts';
import { sqsRecord, T0 } from '../support/builders.ts';
import { credentials, type ProvisionedStack, region } from '../support/emulators.ts';
import {
  FakeMailer,
  InMemoryApiKeys,
  InMemoryHeldJobs,
  InMemoryMessageStore,
  InMemorySuppressionStore,
  InMemoryUsageStore,
  issueApiKey,
  RecordingGuard,
  RecordingVisibility,
  testClock,
} from '../support/fakes.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';
import { composedMail, envelope, sha256 } from '../support/raw-mail.ts';

// Issue 12 point 5: an SMTP message far above one SQS message travels through the payload bucket
// (fauxqs's S3 here) and reaches SES byte for byte. ~35 MB is about the largest the SMTP entry
// takes: SES sends at most 40 MB per message as sent, and what Baton sends is about the size of
// what arrived.

/** The job size limit the SMTP entry is run with in this test (see docs/smtp.md). */
const SMTP_MAX_JOB_BYTES = 38_000_000;
/** SES v2: 40 MB per message (https://docs.aws.amazon.com/ses/latest/dg/quotas.html). */
const SES_MAX_MESSAGE_BYTES = 40_000_000;

let stack: ProvisionedStack;
let store: S3PayloadStore;

withProvisionedStack(async (started) => {
  stack = started;
  const s3 = new S3Client({ endpoint: stack.sqsSns.endpoint, region, credentials, forcePathStyle: true });
  const [bucket = ''] = [...stack.physical.buckets.values()];
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  store = new S3PayloadStore(s3, bucket);
});

describe('S3PayloadStore above one part', () => {
  it('stores a payload larger than local mode’s 11 MiB request limit in parts and reads back exactly its bytes', async () => {
    // Prepare
    const bytes = randomBytes(2 * PART_BYTES + 12_345);

    // Act
    await store.put('payloads/msg_parts', bytes);
    const read = await store.get('payloads/msg_parts');

    // Assess
    expect(sha256(read)).toBe(sha256(bytes));
  }, 60_000);
});

describe('a large message submitted over SMTP', () => {
  it('is queued as a pointer to the payload bucket and sent with its attachment byte for byte', async () => {
    // Prepare: 26 MB of attachment, about 35.6 MB as it arrives (base64 in MIME).
    const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(26_000_000)]);
    const raw = await composedMail({ attachments: [{ filename: 'scan.pdf', content: pdf }] });
    const messages = new InMemoryMessageStore();
    const queue = new SqsJobQueue(
      stack.clients.sqs,
      { transactional: stack.queues.transactional.url, broadcast: stack.queues.broadcast.url },
      store,
    );
    const { key } = issueApiKey();
    const deps = {
      messages,
      suppressions: new InMemorySuppressionStore(),
      queue,
      usage: new InMemoryUsageStore(),
      clock: testClock(T0),
      newId: () => 'msg_smtp_large',
      retentionDays: 30,
      held: new InMemoryHeldJobs(),
      guard: new RecordingGuard(),
    };

    // Act: accepted as the SMTP server accepts it, then sent as the sender sends it.
    const message = await readSubmission(raw, envelope(['ana@example.org']));
    const accepted = await acceptSubmission(deps, key, message, { maxJobBytes: SMTP_MAX_JOB_BYTES });
    const received = await stack.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.queues.transactional.url, MaxNumberOfMessages: 10 }),
    );
    const mailer = new FakeMailer();
    const sender = createSender({
      messages,
      suppressions: new InMemorySuppressionStore(),
      mailer,
      visibility: new RecordingVisibility(),
      keys: new InMemoryApiKeys(),
      held: new InMemoryHeldJobs(),
      clock: testClock(T0),
      payloads: store,
    });
    const record = sqsRecord(received.Messages?.[0]?.Body ?? '', { messageId: 'sqs-large' });
    await sender.sendRecord(record, await sender.prepare([record]));

    // Assess
    expect(raw.length).toBeGreaterThan(35_000_000);
    expect(accepted.status).toBe('queued');
    expect(received.Messages).toHaveLength(1);
    expect(JSON.parse(received.Messages?.[0]?.Body ?? '{}')).toMatchObject({
      id: 'msg_smtp_large',
      payload: { key: 'payloads/msg_smtp_large' },
    });
    const [sent] = mailer.sent;
    expect(sent?.to).toEqual(['ana@example.org']);
    expect(sent?.raw.length).toBeLessThan(SES_MAX_MESSAGE_BYTES);
    const parsed = await simpleParser(Buffer.from(sent?.raw ?? new Uint8Array()));
    expect(parsed.attachments.map((a) => sha256(a.content))).toEqual([sha256(pdf)]);
    expect(messages.peek('msg_smtp_large')?.phase).toBe('sent');
  }, 120_000);
});
