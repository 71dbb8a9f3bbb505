import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  lanesDrained,
  messageReaches,
  receipt,
  type TestBaton,
  withTestBaton,
} from '../support/local-baton.ts';
import { headerBlock, headerValue, headerValues } from '../support/mime.ts';

// Large messages through local mode: a message larger than one SQS message is stored in the
// payload bucket (on fauxqs's S3) and the lane queue carries a pointer the sender reads back.

const MB = 1024 * 1024;

let baton: TestBaton;
let s3: S3Client;

withTestBaton((started) => {
  baton = started;
  // fauxqs serves S3 on the SQS endpoint; credentials as the local functions use them.
  s3 = new S3Client({
    endpoint: baton.endpoints.sqs,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    forcePathStyle: true,
  });
});

afterAll(() => {
  s3?.destroy();
});

interface MimePart {
  readonly headers: string;
  readonly body: string;
}

/** The leaf parts of a MIME message (multiparts opened recursively), headers and raw body text. */
function leafParts(raw: string): MimePart[] {
  const headers = headerBlock(raw);
  const body = raw.slice(headers.length + 2);
  const contentType = headerValues(headers, 'Content-Type')[0] ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!/^multipart\//i.test(contentType) || boundary === undefined) return [{ headers, body }];
  return body
    .split(`--${boundary}`)
    .slice(1, -1)
    .flatMap((part) => leafParts(part.replace(/^\r\n/, '')));
}

async function send(json: unknown): Promise<{ status: number; contentType: string | null; body: unknown }> {
  const res = await baton.request('/v1/messages', { json });
  return { status: res.status, contentType: res.headers.get('content-type'), body: await res.json() };
}

async function delivered(id: string): Promise<void> {
  await messageReaches(baton, id, 'delivered', 60_000);
}

/** A message to the mailbox simulator's success address with one attachment. */
const withAttachment = (subject: string, text: string, attachment: Record<string, unknown>) =>
  receipt('success@simulator.amazonses.com', { subject, text, attachments: [attachment] });

describe('large messages, end to end', () => {
  it('delivers a message with a 2.5 MB attachment through the payload bucket, attachment intact', async () => {
    // Prepare
    const attachment = randomBytes(2.5 * MB);
    const message = withAttachment('Your report', 'The report is attached.', {
      filename: 'report.bin',
      contentType: 'application/octet-stream',
      content: attachment.toString('base64'),
    });

    // Act
    const accepted = await send(message);

    // Assess: accepted, claim-checked (the job is in the bucket), delivered
    expect(accepted.status).toBe(202);
    const { id } = accepted.body as { id: string };
    const [bucket] = baton.plan.buckets;
    const stored = await s3.send(new HeadObjectCommand({ Bucket: bucket?.name, Key: `payloads/${id}` }));
    expect(stored.ContentLength).toBeGreaterThan(2.5 * MB);
    await delivered(id);

    // Assess: the outbox message carries the exact attachment bytes
    const raw = readFileSync(join(baton.outboxDir, `${id}.eml`)).toString('latin1');
    const parts = leafParts(raw).filter((p) => /filename="?report\.bin"?/i.test(p.headers));
    expect(parts).toHaveLength(1);
    const part = parts[0] as MimePart;
    expect(headerValue(part.headers, 'Content-Transfer-Encoding').toLowerCase()).toBe('base64');
    const decoded = Buffer.from(part.body.replace(/\s+/g, ''), 'base64');
    expect(decoded.length).toBe(attachment.length);
    expect(decoded.equals(attachment)).toBe(true);
  });

  it('accepts and delivers a message just under the 6 MB request limit', async () => {
    // Prepare: 4.3 MB of bytes is about 5.7 MB of base64 in the request
    const attachment = randomBytes(4.3 * MB);
    const json = withAttachment('Your archive', 'The archive is attached.', {
      filename: 'archive.bin',
      content: attachment.toString('base64'),
    });
    expect(Buffer.byteLength(JSON.stringify(json))).toBeGreaterThan(5.5 * MB);
    expect(Buffer.byteLength(JSON.stringify(json))).toBeLessThan(6 * MB);

    // Act
    const accepted = await send(json);

    // Assess
    expect(accepted.status).toBe(202);
    await delivered((accepted.body as { id: string }).id);
  });

  it('refuses a 7 MB request with a 413 problem and queues nothing', async () => {
    // Prepare
    const json = receipt('success@simulator.amazonses.com', { subject: 'Too big', text: 'x'.repeat(7 * MB) });
    const sentBefore = baton.ses.sent().length;

    // Act
    const refused = await send(json);

    // Assess
    expect(refused.status).toBe(413);
    expect(refused.contentType).toMatch(/^application\/problem\+json/);
    expect(refused.body).toEqual({
      type: 'urn:baton:problem:too_large',
      title: 'Request too large',
      status: 413,
      detail: 'The request is larger than 6 MB.',
      code: 'too_large',
    });
    // Anything the 413 had queued would have reached SES by the time the lanes are empty.
    await lanesDrained(baton);
    expect(baton.ses.sent()).toHaveLength(sentBefore);
  });
});
