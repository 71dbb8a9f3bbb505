import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  lanesDrained,
  messageReaches,
  queueDrained,
  type TestBaton,
  waitFor,
  withTestBaton,
} from '../support/local-baton.ts';
import { WebhookReceiver } from '../support/webhooks.ts';

// Secrets and personal data never reach the logs (issue 6): local mode runs the real handlers, so
// their log files are what CloudWatch would receive. One run sends mail with distinctive text to
// simulator addresses (delivered, bounced, complained, rejected and throttled by SES), manages a
// suppression, erases a recipient and makes requests that fail, waits for every send and every SES
// event, and then reads every log file local mode wrote for a single occurrence of any of them.
// (Deployed, the API's access log holds the route key, never the path: see http-api.test.ts.)

/** Distinctive, so a hit can only come from this test's requests. */
const MARK = randomBytes(3).toString('hex');
const KEY_ID = `hygiene${MARK}`;
const SECRET = randomBytes(30).toString('base64url');
const API_KEY = `bt_${KEY_ID}_${SECRET}`;
const WRONG_SECRET = randomBytes(30).toString('base64url');
const WRONG_KEY = `bt_${KEY_ID}_${WRONG_SECRET}`;

const SUBJECT = `Zebra quartz invoice ${MARK}`;
const TEXT = `Marmalade obsidian body ${MARK}, please keep this private.`;
const HTML_TEXT = `Velvet tangerine html ${MARK}`;
const HTML = `<p><b>${HTML_TEXT}</b></p>`;
const SUPPRESSION_DETAIL = `Cobalt lantern note ${MARK}`;

const sim = (mailbox: string, label: string): string => `${mailbox}+${label}-${MARK}@simulator.amazonses.com`;
const ADDRESSES = {
  delivered: sim('success', 'hygiene'),
  broadcast: sim('success', 'hygiene-broadcast'),
  cc: sim('success', 'hygiene-cc'),
  bounced: sim('bounce', 'hygiene'),
  complained: sim('complaint', 'hygiene'),
  rejected: sim('success', 'hygiene-rejected'),
  throttled: sim('success', 'hygiene-throttled'),
  refused: sim('success', 'hygiene-refused'),
  invalidBatch: sim('success', 'hygiene-batch'),
  suppressed: `manual+hygiene-${MARK}@example.org`,
  erased: `erase+hygiene-${MARK}@example.org`,
};

/**
 * What must never appear in a log line: the key (whole and its secret part, the wrong one too),
 * the message text, and every recipient address, written as is or URL-encoded, and as a bare local
 * part. The simulator mailboxes without their label are listed too.
 */
const FORBIDDEN: ReadonlyArray<readonly [what: string, text: string]> = [
  ['the API key', API_KEY],
  ['the API key secret', SECRET],
  ['a wrong API key', WRONG_KEY],
  ['a wrong API key secret', WRONG_SECRET],
  ['the subject', SUBJECT],
  ['the text body', TEXT],
  ['the HTML body', HTML_TEXT],
  ['the suppression detail', SUPPRESSION_DETAIL],
  ...Object.entries(ADDRESSES).flatMap(
    ([name, address]): Array<readonly [string, string]> => [
      [`the ${name} address`, address],
      [`the ${name} address, URL-encoded`, encodeURIComponent(address)],
      [`the ${name} address's local part`, address.slice(0, address.indexOf('@'))],
    ],
  ),
  ...['success', 'bounce', 'complaint'].map((mailbox): readonly [string, string] => [
    `${mailbox}@ of the simulator`,
    `${mailbox}@simulator.amazonses.com`,
  ]),
];

/**
 * Webhooks (issue 14): an endpoint whose URL carries a distinctive path, and its secret once it is
 * registered. Neither may reach a log, nor may the bodies the delivery function signs.
 */
const HOOK_PATH = `/hooks/ochre-${MARK}`;
const webhookSecrets: Array<readonly [string, string]> = [];
let receiver: WebhookReceiver | undefined;
afterAll(async () => {
  await receiver?.close();
});

let baton: TestBaton;

withTestBaton(
  (started) => {
    baton = started;
  },
  // DEBUG: the per-message lines (INFO logs one summary per batch) are the ones most likely to
  // carry something they should not, and they name each message id the test waits for.
  { apiKey: API_KEY, logLevel: 'DEBUG' },
);

const FROM = 'Shop <orders@example.com>';

async function send(to: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const res = await baton.request('/v1/messages', {
    json: { from: FROM, to, subject: SUBJECT, text: TEXT, html: HTML, ...extra },
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 202 || body.id === undefined) throw new Error(`not accepted: ${res.status}`);
  return body.id;
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile());
}

/** Every log file local mode wrote: the function logs and the SES stand-in's, and any other `.log`. */
function logFiles(): Map<string, string> {
  const paths = new Set([
    ...filesUnder(baton.logDir),
    ...filesUnder(baton.dir).filter((p) => p.endsWith('.log')),
  ]);
  return new Map([...paths].map((path) => [relative(baton.dir, path), readFileSync(path, 'utf8')]));
}

const allLogs = (): string => [...logFiles().values()].join('\n');

type Sent = 'delivered' | 'broadcast' | 'bounced' | 'complained' | 'rejected' | 'throttled';

describe('log hygiene, end to end through local mode', () => {
  const ids: Record<Sent, string> = {
    delivered: '',
    broadcast: '',
    bounced: '',
    complained: '',
    rejected: '',
    throttled: '',
  };
  const statuses: number[] = [];

  beforeAll(async () => {
    // A webhook endpoint that fails the first delivery of the first two events, so the delivery
    // function logs its retry path as well as its success (more failures in a row would open the
    // endpoint's breaker, which is not what this test is about).
    receiver = await WebhookReceiver.start();
    const firstSeen = new Set<string>();
    receiver.answer = ({ headers }) => {
      const id = String(headers['webhook-id']);
      if (firstSeen.has(id) || firstSeen.size >= 2) return { status: 200 };
      firstSeen.add(id);
      return { status: 500, body: `refused ${MARK}` };
    };
    const hook = await baton.request('/v1/webhooks', { json: { url: receiver.url(HOOK_PATH) } });
    const endpoint = (await hook.json()) as { secret?: string };
    if (hook.status !== 201 || endpoint.secret === undefined)
      throw new Error(`webhook not registered: ${hook.status}`);
    receiver.secrets = [endpoint.secret];
    webhookSecrets.push(
      ['the webhook secret', endpoint.secret],
      ['the webhook secret key', endpoint.secret.slice('whsec_'.length)],
      ['the webhook URL path', HOOK_PATH],
    );
    // The producers' endpoint cache lasts a second in local mode.
    await new Promise((r) => setTimeout(r, 1_200));

    // Mail that is delivered (with a cc), bounced and complained about.
    ids.delivered = await send([ADDRESSES.delivered], { cc: [ADDRESSES.cc] });
    ids.broadcast = await send([ADDRESSES.broadcast], {
      stream: 'broadcast',
      listUnsubscribe: `https://example.com/unsubscribe/${MARK}`,
    });
    ids.bounced = await send([ADDRESSES.bounced]);
    ids.complained = await send([ADDRESSES.complained]);
    await messageReaches(baton, ids.delivered, 'delivered');
    await messageReaches(baton, ids.broadcast, 'delivered');
    await messageReaches(baton, ids.bounced, 'bounced');
    await messageReaches(baton, ids.complained, 'complained');

    // Mail that SES rejects: the sender's error path logs SES's error text. Only once nothing else
    // is on its way to SES, as the fault applies to every send.
    baton.ses.setFaults({ rejectRate: 1 });
    try {
      ids.rejected = await send([ADDRESSES.rejected]);
      await messageReaches(baton, ids.rejected, 'failed');
    } finally {
      baton.ses.setFaults({});
    }

    // Mail that SES throttles at first: the sender logs a warning with SES's error, then retries.
    baton.ses.setFaults({ throttleRate: 1 });
    try {
      ids.throttled = await send([ADDRESSES.throttled]);
      await waitFor('the sender to log the throttled send', async () =>
        allLogs()
          .split('\n')
          .some((line) => line.includes(ids.throttled) && line.includes('retried'))
          ? true
          : undefined,
      );
    } finally {
      baton.ses.setFaults({});
    }
    await messageReaches(baton, ids.throttled, 'delivered');

    // Suppressions: put one with a note, read it, list them, delete it; erase a recipient.
    const path = `/v1/suppressions/${encodeURIComponent(ADDRESSES.suppressed)}`;
    const requests: Array<[string, RequestInit & { json?: unknown; auth?: string | null }]> = [
      [path, { method: 'PUT', json: { reason: 'manual', detail: SUPPRESSION_DETAIL } }],
      [path, {}],
      ['/v1/suppressions', {}],
      [path, { method: 'DELETE' }],
      [`/v1/recipients/${encodeURIComponent(ADDRESSES.erased)}`, { method: 'DELETE' }],
      // Requests that fail: a wrong secret for the right key id, a key in a header of the wrong
      // form, a sender domain the key may not use, an invalid batch, a body that is not JSON, and
      // an unknown path that carries an address.
      [
        '/v1/messages',
        { auth: WRONG_KEY, json: { from: FROM, to: [ADDRESSES.refused], subject: SUBJECT, text: TEXT } },
      ],
      ['/v1/messages', { auth: SECRET, json: { from: FROM, to: [ADDRESSES.refused], subject: SUBJECT } }],
      [
        '/v1/messages',
        { json: { from: 'ceo@bank.example', to: [ADDRESSES.refused], subject: SUBJECT, text: TEXT } },
      ],
      [
        '/v1/messages/batch',
        {
          json: {
            messages: [
              { from: FROM, to: [ADDRESSES.invalidBatch], subject: SUBJECT, text: TEXT, html: HTML },
              { from: FROM, to: ['not an address'], subject: SUBJECT, text: TEXT },
            ],
          },
        },
      ],
      [
        '/v1/messages',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: `{"to": ["${ADDRESSES.refused}"], "subject": "${SUBJECT}", "text": "${TEXT}"`,
        },
      ],
      [`/v1/nowhere/${ADDRESSES.refused}`, {}],
    ];
    for (const [target, init] of requests) statuses.push((await baton.request(target, init)).status);

    // Every send and every SES event handled.
    await lanesDrained(baton);
    await baton.ses.settled();
    const feedback = [...baton.queues].find(
      ([logicalId]) => logicalId.startsWith('FeedbackQueue') && !logicalId.includes('DeadLetter'),
    )?.[1];
    if (feedback === undefined)
      throw new Error(`no feedback queue in ${[...baton.queues.keys()].join(', ')}`);
    await queueDrained(baton, feedback.url, 'feedback queue');

    // The refused deliveries retried and delivered.
    await waitFor(
      'the webhook retries to be delivered',
      async () =>
        receiver !== undefined &&
        receiver.received.length > 0 &&
        [...firstSeen].every((id) =>
          receiver?.received.some((r) => r.status === 200 && r.headers['webhook-id'] === id),
        )
          ? true
          : undefined,
      30_000,
    );

    // Until the log streams show every message handled, and have stopped growing.
    await waitFor('the logs to show every message handled', async () => {
      const logs = allLogs();
      return Object.values(ids).every((id) => logs.includes(id)) ? true : undefined;
    });
    let size = -1;
    await waitFor(
      'the logs to settle',
      async () => {
        const now = allLogs().length;
        const settled = now === size;
        size = now;
        return settled ? true : undefined;
      },
      15_000,
      300,
    );
  }, 120_000);

  it('made the requests it meant to: accepted, refused and failed ones', () => {
    // Assess: the suppression calls succeeded and each failing request failed.
    expect(statuses.slice(0, 5).every((status) => status < 300)).toBe(true);
    expect(statuses.slice(5)).toEqual([401, 401, 403, 207, 400, 404]);
  });

  it('reads the log of every function and of the SES stand-in, with the messages in them', () => {
    // Act
    const files = logFiles();

    // Assess: one log per function (named by logical id) and the stand-in's, none empty.
    expect([...files.keys()].filter((name) => name.endsWith('ses-standin.log'))).toHaveLength(1);
    expect(files.size).toBe(baton.pools.size + 1);
    // The erasure worker only runs when an erasure outlasts its request: its log may be empty.
    for (const [name, text] of files) {
      if (!name.startsWith(join('logs', 'ErasureWorker'))) expect(text.length, name).toBeGreaterThan(0);
    }
    for (const id of Object.values(ids)) expect(allLogs()).toContain(id);
  });

  it('writes no key, message text or recipient address to any log', () => {
    // Act
    const forbidden = [...FORBIDDEN, ...webhookSecrets];
    expect(webhookSecrets).toHaveLength(3);
    const leaks = [...logFiles()].flatMap(([file, text]) => {
      const lower = text.toLowerCase();
      return forbidden
        .filter(([, needle]) => lower.includes(needle.toLowerCase()))
        .map(([what, needle]) => {
          const at = lower.indexOf(needle.toLowerCase());
          const end = text.indexOf('\n', at);
          const line = text.slice(text.lastIndexOf('\n', at) + 1, end === -1 ? undefined : end);
          return `${file}: ${what} in ${line.slice(0, 300)}`;
        });
    });

    // Assess
    expect(leaks).toEqual([]);
  });
});
