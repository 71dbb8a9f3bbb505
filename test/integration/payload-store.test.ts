import '../support/quiet-powertools.ts';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { INLINE_MAX_BYTES, SQS_MAX_BYTES, SqsJobQueue } from '../../lambdas/adapters/job-queue.ts';
import { createS3Client, PayloadMissingError, S3PayloadStore } from '../../lambdas/adapters/payload-store.ts';
import type { SendJob } from '../../lambdas/domain/message.ts';
import { createSender, STORED } from '../../lambdas/sender/app.ts';
import { PermanentError, TransientError } from '../../lambdas/shared/errors.ts';
import { EnvVar, type Lane } from '../../lambdas/shared/names.ts';
import { messageRecord, outgoingMessage, sendJob, T0 } from '../support/builders.ts';
import {
  credentials,
  type ProvisionedStack,
  type QueueRef,
  region,
  startProvisionedStack,
  unreachable,
} from '../support/emulators.ts';
import {
  FakeMailer,
  InMemoryApiKeys,
  InMemoryHeldJobs,
  InMemoryMessageStore,
  InMemorySuppressionStore,
  RecordingVisibility,
  testClock,
} from '../support/fakes.ts';

/** A send job whose attachment holds `bytes` random bytes (base64 in the job, so a third larger). */
function jobOfSize(id: string, bytes: number, stream: Lane = 'transactional'): SendJob {
  return sendJob(
    outgoingMessage({
      stream,
      ...(stream === 'broadcast' ? { listUnsubscribe: 'https://example.com/unsub?u=1' } : {}),
      attachments:
        bytes === 0
          ? []
          : [
              {
                filename: 'report.bin',
                contentType: 'application/octet-stream',
                content: randomBytes(bytes).toString('base64'),
                disposition: 'attachment',
              },
            ],
    }),
    id,
  );
}

const MB = 1024 * 1024;

describe('claim check against fauxqs (SQS and S3 on one endpoint)', () => {
  let stack: ProvisionedStack;
  let s3: S3Client;
  let bucket: string;
  let store: S3PayloadStore;

  beforeAll(async () => {
    stack = await startProvisionedStack();
    s3 = new S3Client({ endpoint: stack.sqsSns.endpoint, region, credentials, forcePathStyle: true });
    // The bucket the template defines, under the name local provisioning gives it.
    const [name, ...others] = [...stack.physical.buckets.values()];
    expect(others).toEqual([]);
    bucket = name ?? '';
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    store = new S3PayloadStore(s3, bucket);
  });

  afterAll(async () => {
    s3?.destroy();
    await stack?.stop();
  });

  /** Everything waiting on a lane queue right now, deleted from view by a long visibility timeout. */
  const drain = async (queue: QueueRef): Promise<Message[]> => {
    const all: Message[] = [];
    for (;;) {
      const out = await stack.clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queue.url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: 600,
        }),
      );
      if (!out.Messages?.length) return all;
      all.push(...out.Messages);
    }
  };

  const storedKeys = async (): Promise<string[]> => {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    return (out.Contents ?? []).map((o) => o.Key ?? '').toSorted();
  };

  const queueWithPayloads = (payloads?: S3PayloadStore) =>
    new SqsJobQueue(
      stack.clients.sqs,
      { transactional: stack.queues.transactional.url, broadcast: stack.queues.broadcast.url },
      payloads,
    );

  beforeEach(async () => {
    await drain(stack.queues.transactional);
    await drain(stack.queues.broadcast);
  });

  describe('S3PayloadStore', () => {
    it('stores bytes under their key and reads back exactly those bytes', async () => {
      // Prepare
      const bytes = randomBytes(2 * MB);

      // Act
      await store.put('payloads/msg_roundtrip', bytes);
      const read = await store.get('payloads/msg_roundtrip');

      // Assess
      expect(Buffer.from(read).equals(bytes)).toBe(true);
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'payloads/msg_roundtrip' }));
      expect(head.ContentType).toBe('application/json');
    });

    it('reports a missing payload as a PayloadMissingError (a PermanentError) naming the key', async () => {
      // Act
      const outcome = store.get('payloads/msg_never_stored');

      // Assess
      await expect(outcome).rejects.toThrow(
        new PayloadMissingError(
          'payload payloads/msg_never_stored is missing (expired or never stored): NoSuchKey',
        ),
      );
      await expect(outcome).rejects.toBeInstanceOf(PermanentError);
    });

    it('deletes an object, and deleting a missing one is no error', async () => {
      // Prepare
      await store.put('payloads/held/msg_delete.json', Buffer.from('{}'));

      // Act
      await store.delete('payloads/held/msg_delete.json');
      await store.delete('payloads/held/msg_delete.json');

      // Assess
      await expect(store.get('payloads/held/msg_delete.json')).rejects.toBeInstanceOf(PayloadMissingError);
    });

    it('reports a missing bucket as a PermanentError on put', async () => {
      // Prepare
      const wrong = new S3PayloadStore(s3, 'no-such-bucket');

      // Act
      const outcome = wrong.put('payloads/msg_1', Buffer.from('{}'));

      // Assess
      await expect(outcome).rejects.toThrow(
        new PermanentError('storing payload payloads/msg_1 failed: NoSuchBucket'),
      );
    });

    it('reports an unreachable S3 as a TransientError, keeping the SDK error as the cause', async () => {
      // Prepare: nothing listens on port 9
      const dead = new S3Client({ ...unreachable, forcePathStyle: true });
      const offline = new S3PayloadStore(dead, bucket);

      // Act
      const [put, get] = await Promise.allSettled([
        offline.put('payloads/msg_1', Buffer.from('{}')),
        offline.get('payloads/msg_1'),
      ]);

      // Assess
      const errors = [put, get].map((r) => (r.status === 'rejected' ? (r.reason as Error) : undefined));
      expect(errors.map((e) => e instanceof TransientError)).toEqual([true, true]);
      expect(errors.map((e) => e?.message.replace(/: .*$/, ''))).toEqual([
        'storing payload payloads/msg_1 failed',
        'reading payload payloads/msg_1 failed',
      ]);
      expect(errors.map((e) => (e?.cause as { code?: string } | undefined)?.code)).toEqual([
        'ECONNREFUSED',
        'ECONNREFUSED',
      ]);
      dead.destroy();
    });

    it.each([
      ['addresses the bucket by path when BATON_S3_FORCE_PATH_STYLE is true', 'true', 'stored'],
      ['cannot reach a host-named bucket on a plain local endpoint without it', undefined, 'unreachable'],
    ] as const)('%s', async (_, pathStyle, expected) => {
      // Prepare: `localhost` (unlike 127.0.0.1) lets the SDK put the bucket in the host name
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        AWS_ENDPOINT_URL_S3: stack.sqsSns.endpoint.replace('127.0.0.1', 'localhost'),
        ...(pathStyle ? { [EnvVar.s3ForcePathStyle]: pathStyle } : {}),
      };
      const saved = process.env.AWS_ENDPOINT_URL_S3;
      process.env.AWS_ENDPOINT_URL_S3 = env.AWS_ENDPOINT_URL_S3;
      const client = createS3Client(env);
      const local = new S3PayloadStore(client, bucket);

      // Act
      const outcome = await local.put('payloads/msg_path_style', Buffer.from('{}')).then(
        () => 'stored',
        (error: unknown) => (error instanceof TransientError ? 'unreachable' : String(error)),
      );
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
      else process.env.AWS_ENDPOINT_URL_S3 = saved;
      client.destroy();

      // Assess
      expect(outcome).toBe(expected);
    });
  });

  describe('SqsJobQueue with a payload store', () => {
    it('stores a 2 MB job in the bucket and queues a small pointer the sender reads it back from', async () => {
      // Prepare
      const queue = queueWithPayloads(store);
      const job = jobOfSize('msg_2mb', 1.5 * MB);
      expect(Buffer.byteLength(JSON.stringify(job))).toBeGreaterThan(2 * 1000 * 1000);

      // Act
      await queue.enqueue('transactional', job);

      // Assess: the queue holds the pointer, the bucket the job
      const [message, ...rest] = await drain(stack.queues.transactional);
      expect(rest).toEqual([]);
      expect(JSON.parse(message?.Body ?? 'null')).toEqual({
        v: 1,
        id: 'msg_2mb',
        tenant: job.tenant,
        payload: { bucket, key: 'payloads/msg_2mb' },
      });
      const stored = new TextDecoder().decode(await store.get('payloads/msg_2mb'));
      expect(stored).toBe(JSON.stringify(job));

      // Assess: the sender turns the received pointer back into the job, and sends it
      const messages = new InMemoryMessageStore();
      await messages.create(messageRecord({ id: job.id, tenant: job.tenant }));
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
      const received = {
        messageId: message?.MessageId ?? '',
        receiptHandle: message?.ReceiptHandle ?? '',
        body: message?.Body ?? '',
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: '0',
          SenderId: 'x',
          ApproximateFirstReceiveTimestamp: '0',
        },
        messageAttributes: {},
        md5OfBody: message?.MD5OfBody ?? '',
        eventSource: 'aws:sqs',
        eventSourceARN: stack.queues.transactional.arn,
        awsRegion: region,
      };
      const batch = await sender.prepare([received]);
      // Only the recipients were kept from the read; the body is read again at its turn.
      expect(batch.jobs.get(message?.MessageId ?? '')).toBe(STORED);
      await sender.sendRecord(received, batch);
      expect(mailer.sent).toHaveLength(1);
    });

    it('sends a job of up to INLINE_MAX_BYTES inline and stores nothing', async () => {
      // Prepare
      const queue = queueWithPayloads(store);
      const base = Buffer.byteLength(JSON.stringify(jobOfSize('msg_edge', 0)));
      // An attachment entry adds its own JSON around the base64; fill the rest with base64.
      const entry = Buffer.byteLength(JSON.stringify(jobOfSize('msg_edge', 3))) - base - 4;
      const room = INLINE_MAX_BYTES - base - entry;
      const job = jobOfSize('msg_edge', Math.floor(room / 4) * 3);
      const size = Buffer.byteLength(JSON.stringify(job));
      expect(size).toBeLessThanOrEqual(INLINE_MAX_BYTES);
      expect(size).toBeGreaterThan(INLINE_MAX_BYTES - 8);

      // Act
      await queue.enqueue('transactional', job);

      // Assess
      const [message] = await drain(stack.queues.transactional);
      expect(message?.Body).toBe(JSON.stringify(job));
      expect(await storedKeys()).not.toContain('payloads/msg_edge');
    });

    it('enqueues a mix of small and large jobs in one call: small ones inline, large ones as pointers', async () => {
      // Prepare
      const queue = queueWithPayloads(store);
      const items = [
        { lane: 'transactional' as const, job: jobOfSize('msg_mix_s1', 1000) },
        { lane: 'transactional' as const, job: jobOfSize('msg_mix_l1', 2 * MB) },
        { lane: 'broadcast' as const, job: jobOfSize('msg_mix_s2', 500_000, 'broadcast') },
        { lane: 'broadcast' as const, job: jobOfSize('msg_mix_l2', 1 * MB, 'broadcast') },
        { lane: 'transactional' as const, job: jobOfSize('msg_mix_s3', 0) },
      ];

      // Act
      const results = await queue.enqueueMany(items);

      // Assess
      expect(results).toEqual([undefined, undefined, undefined, undefined, undefined]);
      const bodies = [
        ...(await drain(stack.queues.transactional)),
        ...(await drain(stack.queues.broadcast)),
      ].map((m) => JSON.parse(m.Body ?? 'null') as { id: string; message?: unknown; payload?: unknown });
      const byId = new Map(bodies.map((b) => [b.id, b]));
      expect([...byId.keys()].toSorted()).toEqual(items.map((i) => i.job.id).toSorted());
      for (const { job } of items) {
        const body = byId.get(job.id);
        if (job.id.includes('_l')) {
          expect(body).toEqual({
            v: 1,
            id: job.id,
            tenant: job.tenant,
            payload: { bucket, key: `payloads/${job.id}` },
          });
          expect(new TextDecoder().decode(await store.get(`payloads/${job.id}`))).toBe(JSON.stringify(job));
        } else {
          expect(body).toEqual(job);
        }
      }
      const keys = await storedKeys();
      expect(keys).toEqual(expect.arrayContaining(['payloads/msg_mix_l1', 'payloads/msg_mix_l2']));
      expect(keys.filter((k) => k.startsWith('payloads/msg_mix_s'))).toEqual([]);
    });

    it('reports a large job whose payload could not be stored, queues no pointer for it and the rest as usual', async () => {
      // Prepare
      const queue = queueWithPayloads(new S3PayloadStore(s3, 'no-such-bucket'));
      const items = [
        { lane: 'transactional' as const, job: jobOfSize('msg_ok', 100) },
        { lane: 'transactional' as const, job: jobOfSize('msg_lost', 2 * MB) },
      ];

      // Act
      const results = await queue.enqueueMany(items);

      // Assess
      expect(results).toEqual([
        undefined,
        new PermanentError('storing payload payloads/msg_lost failed: NoSuchBucket'),
      ]);
      const bodies = (await drain(stack.queues.transactional)).map((m) => JSON.parse(m.Body ?? 'null'));
      expect(bodies).toEqual([items[0]?.job]);
    });

    it('throws before queueing anything when a single large payload cannot be stored', async () => {
      // Prepare
      const queue = queueWithPayloads(new S3PayloadStore(s3, 'no-such-bucket'));

      // Act
      const outcome = queue.enqueue('broadcast', jobOfSize('msg_lost', 2 * MB, 'broadcast'));

      // Assess
      await expect(outcome).rejects.toThrow(
        new PermanentError('storing payload payloads/msg_lost failed: NoSuchBucket'),
      );
      expect(await drain(stack.queues.broadcast)).toEqual([]);
    });
  });

  describe('SqsJobQueue without a payload store', () => {
    it('keeps sending every job inline, so SQS refuses one over 1 MiB', async () => {
      // Prepare
      const queue = queueWithPayloads();
      const job = jobOfSize('msg_inline_2mb', 1.5 * MB);
      expect(Buffer.byteLength(JSON.stringify(job))).toBeGreaterThan(SQS_MAX_BYTES);

      // Act
      const outcome = queue.enqueue('transactional', job);

      // Assess
      await expect(outcome).rejects.toThrow();
      await expect(outcome).rejects.not.toBeInstanceOf(TransientError);
      expect(await drain(stack.queues.transactional)).toEqual([]);
      expect(await storedKeys()).not.toContain('payloads/msg_inline_2mb');
    });
  });
});
