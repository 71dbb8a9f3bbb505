import '../../support/quiet-powertools.ts';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressKey, normaliseAddress } from '../../../lambdas/domain/address.ts';
import { eraseFromRecord, tombstoneFor } from '../../../lambdas/domain/erasure/erasure.ts';
import {
  PartlyAppliedError,
  UnknownMessageError,
} from '../../../lambdas/domain/feedback/process-feedback.ts';
import { MalformedFeedbackError, parseFeedback } from '../../../lambdas/domain/feedback/ses-event.ts';
import { SOFT_BOUNCE_THRESHOLD } from '../../../lambdas/domain/feedback/soft-bounce.ts';
import type { MessageRecord, Phase, RecipientStatus } from '../../../lambdas/domain/message.ts';
import { recipientRank } from '../../../lambdas/domain/reporting/status.ts';
import { SEVERITY, type Suppression } from '../../../lambdas/domain/suppression/suppression.ts';
import { ConflictError, TransientError } from '../../../lambdas/shared/errors.ts';
import { MessageTag } from '../../../lambdas/shared/names.ts';
import {
  messageRecord,
  recipient,
  sesEventBody,
  snsEnvelope,
  sqsRecord,
  suppression,
} from '../../support/builders.ts';
import {
  type FeedbackWorld,
  feedbackWorld,
  fuzzErasedKeyOf,
  loadSesCorpus,
  objectAt,
  type RecordTrace,
  type SesTemplate,
  sesJsonFrom,
  stringAt,
} from '../../support/feedback-fuzz.ts';
import {
  applyJsonMutation,
  fieldMutations,
  getAt,
  isJsonMutation,
  type Json,
  renameAt,
  setAt,
} from '../../support/json-mutations.ts';

// Issue 6, "Bad input", the feedback half: SQS batches built from every SES/SNS fixture in
// test/fixtures/shared/ses, aimed at seeded messages or at none, then mutated (fields dropped,
// renamed, retyped, huge, unicode; wrong event types; truncated or non-JSON bodies; SNS envelopes
// broken, nested, or with Message as an object; duplicated and redelivered records), thrown at the
// feedback function composed as lambdas/feedback/handler.ts composes it, over in-memory fakes.
//
// What the code promises (lambdas/feedback/app.ts, lambdas/domain/feedback/process-feedback.ts), and what
// every generated batch is held to:
// - The function resolves; it never throws and leaves no unhandled rejection behind.
// - A record is either acknowledged or reported in `batchItemFailures`, so SQS retries it and, after
//   maxReceiveCount, dead-letters it. There is no third path: malformed input is not acknowledged
//   and logged, it throws `MalformedFeedbackError` (a PermanentError, which the consumer still
//   rethrows, so it reaches the DLQ through the failures); an event for a message Baton does not
//   know throws `TransientError` inside the 15-minute race window and `UnknownMessageError` after.
//   A failure has one of the reasons the consumer knows (malformed, orphaned, transient, a lost
//   write race): anything else (a TypeError) is a crash on input.
// - An acknowledged record had its effect. An event that parses and finds its message is written to
//   it (its key joins `seen`), Open, Click and Subscription included (a timeline entry): no event
//   type is ignored as such. The only acknowledgements without a message write, from the code:
//   an event already applied (its key in `seen`, written by another delivery of it: "the same
//   event twice has one effect", DESIGN §6; which events are "the same" is the code's own
//   `parseFeedback(...).key`), and a Send event for a message Baton already records as sent (the
//   sender wrote the send itself; applyFeedback returns nothing to write).
// - Each message write moves no recipient backwards (status rank, lambdas/domain/reporting/status.ts), keeps
//   the recipients, appends to the timeline. The one documented way back: a message the sender
//   gave up on (`failed` + `redrivable`, its recipients `unsent`) that SES proves it sent has those
//   recipients revived to `sent` first, by whichever event names them.
// - Suppressions come only from what SES said: `hard_bounce` for a recipient of a Permanent bounce
//   that is not merely delayed, `complaint` for a complained recipient, `soft_bounce` (repeated
//   transient bounces, DESIGN §2) for a bounced recipient whose count reached the threshold.
//   Nothing else suppresses: no delivery, open, click, subscription, send, reject.
// Then, for feedback as SES sends it (fixtures untouched, aimed at seeded messages): it is never
// dead-lettered (only lost write races fail it, and the retry applies it); its outcome does not
// depend on order, batching or duplicates; and an erased address never comes back into its record.
//
// Runs: BATON_FUZZ_RUNS cases in all (default 10,000), split over the properties below;
// BATON_FUZZ_SEED replaces the fixed default seed. A failure prints fast-check's seed and path.

const TOTAL_RUNS = envInteger('BATON_FUZZ_RUNS', 10_000);
/** A minute per property at npm test's size, growing with the cases (npm run soak runs ten times as many). */
const PROPERTY_TIMEOUT_MS = 60_000 * Math.max(1, TOTAL_RUNS / 10_000);
const SEED = envInteger('BATON_FUZZ_SEED', 60_602_025);
/** Each property's share of the runs; the shares add up to 1, and each rounds up. */
const SHARE = { corpus: 0.45, garbage: 0.19, valid: 0.2, order: 0.1, erasure: 0.06 } as const;
const runsOf = (share: number): number => Math.max(1, Math.ceil(TOTAL_RUNS * share));
/** Generous (a case takes about a millisecond), so that only a hang trips it. */
const timeoutOf = (runs: number): number => 60_000 + runs * 20;

function envInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0)
    throw new Error(`${name} must be a whole number, got "${raw}"`);
  return value;
}

const NOW = '2025-03-01T12:00:00.000Z';
const NOW_MS = Date.parse(NOW);
/** process-feedback.ts retries an event for an unknown message this long before orphaning it. */
const RACE_WINDOW_MS = 15 * 60_000;
/** lib/constructs/feedback-processor.ts: receives before the DLQ. */
const MAX_RECEIVE_COUNT = 5;
/** The Lambda event source's batch size for the feedback queue. */
const BATCH_SIZE = 10;
const TAG = MessageTag.messageId;

/** The types SES publishes (event publishing and identity notifications), compared lower-cased. */
const SES_TYPES = new Set([
  'send',
  'delivery',
  'bounce',
  'complaint',
  'deliverydelay',
  'reject',
  'rendering failure',
  'renderingfailure',
  'subscription',
  'open',
  'click',
]);

// ---------------------------------------------------------------------------------------------
// The corpus and the messages Baton knows

const CORPUS = loadSesCorpus();
const TEMPLATES: readonly SesTemplate[] = CORPUS.templates;

function typeOf(payload: Json): string {
  return (stringAt(payload, 'eventType') ?? stringAt(payload, 'notificationType') ?? '').toLowerCase();
}

/** Where each SES type keeps its details and its recipient list. */
const LAYOUT: Readonly<Record<string, { section?: string; list?: string; objects?: boolean }>> = {
  send: {},
  delivery: { section: 'delivery', list: 'recipients' },
  bounce: { section: 'bounce', list: 'bouncedRecipients', objects: true },
  complaint: { section: 'complaint', list: 'complainedRecipients', objects: true },
  deliverydelay: { section: 'deliveryDelay', list: 'delayedRecipients', objects: true },
  reject: { section: 'reject' },
  'rendering failure': { section: 'failure' },
  renderingfailure: { section: 'failure' },
  subscription: { section: 'subscription' },
  open: { section: 'open' },
  click: { section: 'click' },
};

/** Own keys only: a type named `constructor` must not find Object's. */
function layoutOf(payload: Json): { section?: string; list?: string; objects?: boolean } {
  const type = typeOf(payload);
  return Object.hasOwn(LAYOUT, type) ? (LAYOUT[type] ?? {}) : {};
}

function addressesIn(payload: Json): string[] {
  const layout = layoutOf(payload);
  const destination = getAt(payload, 'mail.destination');
  const out: unknown[] = Array.isArray(destination) ? [...destination] : [];
  if (layout.section && layout.list) {
    const list = getAt(payload, `${layout.section}.${layout.list}`);
    if (Array.isArray(list)) out.push(...list.map((r) => (layout.objects ? stringAt(r, 'emailAddress') : r)));
  }
  const unique = new Map<string, string>();
  for (const a of out) if (typeof a === 'string' && !unique.has(addressKey(a))) unique.set(addressKey(a), a);
  return [...unique.values()];
}

interface KnownMessage {
  readonly id: string;
  readonly sesMessageId?: string;
  readonly addresses: readonly string[];
}

const ERIN = 'erin@erased.example';
const ERIN_KEY = fuzzErasedKeyOf(ERIN);

/** One message per SES message id in the fixtures (found by that id, as identity notifications are). */
const FIXTURE_MESSAGES: readonly KnownMessage[] = [
  ...new Set(TEMPLATES.map((t) => stringAt(objectAt(t.payload, 'mail'), 'messageId') ?? '')),
]
  .sort()
  .map((sesMessageId, i) => ({
    id: `msg_f${i}`,
    sesMessageId,
    addresses: [
      ...new Map(
        TEMPLATES.filter((t) => getAt(t.payload, 'mail.messageId') === sesMessageId)
          .flatMap((t) => addressesIn(t.payload))
          .map((a) => [addressKey(a), a]),
      ).values(),
    ],
  }));

/** Messages found by their Baton tag (configuration-set events carry it); msg_t2's SES id is not written yet. */
const TAGGED_MESSAGES: readonly KnownMessage[] = [
  { id: 'msg_t0', sesMessageId: 'ses-t0', addresses: [ERIN, 'ana@example.org', 'Bob@Example.org'] },
  {
    id: 'msg_t1',
    sesMessageId: 'ses-t1',
    addresses: ['carl@xn--bcher-kva.example', 'recipient@example.com', 'ana@example.org'],
  },
  { id: 'msg_t2', addresses: ['bounce@simulator.amazonses.com', 'success@simulator.amazonses.com'] },
];

const CATALOGUE: readonly KnownMessage[] = [...FIXTURE_MESSAGES, ...TAGGED_MESSAGES];
const KNOWN_IDS = CATALOGUE.map((m) => m.id);
const KNOWN_SES_IDS = CATALOGUE.flatMap((m) => (m.sesMessageId ? [m.sesMessageId] : []));
const MAX_ADDRESSES = Math.max(...CATALOGUE.map((m) => m.addresses.length));

// ---------------------------------------------------------------------------------------------
// Worlds: which messages exist, in what state

const STATUSES: readonly RecipientStatus[] = [
  'queued',
  'sent',
  'delivered',
  'delayed',
  'bounced',
  'complained',
  'suppressed',
  'failed',
];
const PHASES: readonly Phase[] = [
  'queued',
  'sending',
  'sent',
  'sent',
  'sent',
  'failed',
  'rejected',
  'suppressed',
];

const messageState = fc.record({
  present: fc.oneof(
    { arbitrary: fc.constant(true), weight: 6 },
    { arbitrary: fc.constant(false), weight: 1 },
  ),
  phase: fc.constantFrom(...PHASES),
  redrivable: fc.boolean(),
  stream: fc.constantFrom('transactional' as const, 'broadcast' as const),
  recipients: fc.array(fc.record({ status: fc.constantFrom(...STATUSES), soft: fc.boolean() }), {
    minLength: MAX_ADDRESSES,
    maxLength: MAX_ADDRESSES,
  }),
});

/** Suppressions already on the list, to meet: weaker, equal and stronger than what feedback adds. */
const PRESET_SUPPRESSIONS: readonly Suppression[] = [
  suppression('ana@example.org', 'complaint'),
  suppression('recipient@example.com', 'soft_bounce', { expiresAt: '2025-03-10T00:00:00.000Z' }),
  suppression('bounce@simulator.amazonses.com', 'manual'),
  suppression('jane@example.com', 'hard_bounce'),
];

/** Addresses with two recent transient bounces of other messages: a third suppresses them. */
const SOFT_HISTORY = ['recipient@example.com', 'relayuser@test.com', 'ooto@simulator.amazonses.com'];

/** States for the messages, message i taking state i modulo their number (fewer values to generate). */
const STATES = 6;

const worldSpec = fc.record({
  messages: fc.array(messageState, { minLength: STATES, maxLength: STATES }),
  erased: fc.boolean(),
  suppressions: fc.subarray([...PRESET_SUPPRESSIONS]),
  softHistory: fc.boolean(),
});
type WorldSpec = typeof worldSpec extends fc.Arbitrary<infer W> ? W : never;

interface WorldOptions {
  /** Every message of the catalogue exists, whatever the spec says. */
  readonly allPresent?: boolean;
  readonly erased?: boolean;
  /** Seed only these messages (the ones a batch can reach): seeding is most of a small case's cost. */
  readonly only?: ReadonlySet<string>;
}

function buildWorld(spec: WorldSpec, options: WorldOptions = {}): FeedbackWorld {
  const world = feedbackWorld(NOW);
  const erased = options.erased ?? spec.erased;
  CATALOGUE.forEach((m, i) => {
    const s = spec.messages[i % STATES];
    if (s === undefined || (!s.present && !options.allPresent)) return;
    if (options.only !== undefined && !options.only.has(m.id)) return;
    let record: MessageRecord = messageRecord({
      id: m.id,
      stream: s.stream,
      phase: s.phase,
      ...(s.phase === 'failed' && s.redrivable ? { redrivable: true } : {}),
      ...(m.sesMessageId ? { sesMessageId: m.sesMessageId } : {}),
      recipients: m.addresses.map((address, j) => {
        const r = s.recipients[j] ?? { status: 'sent', soft: false };
        // A recipient of a message Baton gave up on is marked unsent, as markGaveUp writes it.
        const givenUp = s.phase === 'failed' && s.redrivable && r.status === 'failed';
        return recipient(address, r.status, {
          ...(r.status === 'bounced' && r.soft ? { soft: true } : {}),
          ...(givenUp ? { unsent: true } : {}),
        });
      }),
    });
    if (erased && m.addresses.includes(ERIN))
      record = eraseFromRecord(record, ERIN_KEY, fuzzErasedKeyOf) ?? record;
    world.messages.seed(record);
  });
  if (erased) world.suppressions.seed(tombstoneFor(ERIN, ERIN_KEY, undefined, new Date(NOW), 'tenant-a'));
  world.suppressions.seed(...spec.suppressions);
  // A recipient seeded soft-bounced was counted when it bounced, as the function counts it.
  const counts = new Map<string, Record<string, number>>();
  const count = (address: string, messageId: string, at: number): void => {
    const key = normaliseAddress(address);
    if (key !== undefined) counts.set(key, { ...counts.get(key), [messageId]: at });
  };
  if (spec.softHistory) {
    for (const address of SOFT_HISTORY) {
      count(address, 'msg_old1', NOW_MS - 86_400_000);
      count(address, 'msg_old2', NOW_MS - 86_400_000);
    }
  }
  for (const record of world.messages.records()) {
    for (const r of record.recipients)
      if (r.status === 'bounced' && r.soft) count(r.address, record.id, NOW_MS - 3_600_000);
  }
  for (const [address, bounces] of counts)
    world.softBounces.states.set(address, { address, bounces, version: 1 });
  return world;
}

// ---------------------------------------------------------------------------------------------
// Events: a fixture, aimed, timed, mutated, wrapped

const unknownId = fc.oneof(
  fc.constantFrom('msg_unknown', 'MSG_T0', 'msg_t0 ', 'ses-unknown', 'x'.repeat(2_000), '\u0000', '𝕞𝕤𝕘'),
  fc.string({ maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 24 }),
);

const target = fc.oneof(
  { arbitrary: fc.constant({ by: 'fixture' as const }), weight: 3 },
  { arbitrary: fc.record({ by: fc.constant('tag' as const), id: fc.constantFrom(...KNOWN_IDS) }), weight: 4 },
  { arbitrary: fc.record({ by: fc.constant('tag' as const), id: unknownId }), weight: 1 },
  {
    arbitrary: fc.record({ by: fc.constant('ses' as const), id: fc.constantFrom(...KNOWN_SES_IDS) }),
    weight: 2,
  },
  { arbitrary: fc.record({ by: fc.constant('ses' as const), id: unknownId }), weight: 1 },
);
type Target = typeof target extends fc.Arbitrary<infer T> ? T : never;

const oddAddress = fc.oneof(
  fc.constantFrom(
    'ana@example.org',
    'ANA@EXAMPLE.ORG',
    ' ana@example.org ',
    'Bob@Example.org',
    'carl@bücher.example',
    'recipient@example.com',
    ERIN,
    'Erin@Erased.Example',
    'bounce@simulator.amazonses.com',
    'not an address',
    '',
    'a@b',
    '<ana@example.org>',
    'ana@example.org\r\nBcc: eve@example.net',
    'erased:000000000000000000000000',
    `${'l'.repeat(70)}@example.org`,
  ),
  fc.emailAddress(),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

const recipients = fc.oneof(
  { arbitrary: fc.constant({ from: 'keep' as const }), weight: 3 },
  {
    arbitrary: fc.record({
      from: fc.constant('target' as const),
      pick: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
      recase: fc.boolean(),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({ from: fc.constant('any' as const), list: fc.array(oddAddress, { maxLength: 4 }) }),
    weight: 2,
  },
);
type Recipients = typeof recipients extends fc.Arbitrary<infer R> ? R : never;

const time = fc.oneof(
  { arbitrary: fc.constant({ at: 'keep' as const }), weight: 4 },
  // Inside the race window, past it, in the future.
  { arbitrary: fc.integer({ min: 0, max: RACE_WINDOW_MS }).map((ms) => ({ at: NOW_MS - ms })), weight: 2 },
  {
    arbitrary: fc
      .integer({ min: RACE_WINDOW_MS + 1, max: 400 * 86_400_000 })
      .map((ms) => ({ at: NOW_MS - ms })),
    weight: 1,
  },
  { arbitrary: fc.integer({ min: 1, max: 86_400_000 }).map((ms) => ({ at: NOW_MS + ms })), weight: 1 },
  {
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          '',
          'yesterday',
          '2025-02-30T00:00:00Z',
          '0',
          '+275760-09-13T00:00:00.000Z',
          '-271821-04-20T00:00:00.000Z',
          '+275760-09-13T00:00:00.001Z',
          '2025-03-01T11:59:00.000+14:00',
        ),
        fc.string({ maxLength: 20 }),
      )
      .map((text) => ({ at: text })),
    weight: 1,
  },
);
type Time = typeof time extends fc.Arbitrary<infer T> ? T : never;

const PATHS = [
  'eventType',
  'notificationType',
  'mail',
  'mail.messageId',
  'mail.timestamp',
  'mail.destination',
  'mail.destination.0',
  'mail.tags',
  `mail.tags.${TAG}`,
  `mail.tags.${TAG}.0`,
  'bounce',
  'bounce.bounceType',
  'bounce.bounceSubType',
  'bounce.bouncedRecipients',
  'bounce.bouncedRecipients.0',
  'bounce.bouncedRecipients.0.emailAddress',
  'bounce.bouncedRecipients.0.action',
  'bounce.bouncedRecipients.0.status',
  'bounce.bouncedRecipients.0.diagnosticCode',
  'bounce.timestamp',
  'bounce.feedbackId',
  'complaint',
  'complaint.complainedRecipients',
  'complaint.complainedRecipients.0',
  'complaint.complainedRecipients.0.emailAddress',
  'complaint.complaintFeedbackType',
  'complaint.complaintSubType',
  'complaint.timestamp',
  'complaint.feedbackId',
  'delivery',
  'delivery.recipients',
  'delivery.recipients.0',
  'delivery.timestamp',
  'delivery.smtpResponse',
  'deliveryDelay',
  'deliveryDelay.delayedRecipients',
  'deliveryDelay.delayedRecipients.0.emailAddress',
  'deliveryDelay.delayType',
  'deliveryDelay.timestamp',
  'reject',
  'reject.reason',
  'failure',
  'failure.errorMessage',
  'open',
  'open.timestamp',
  'click',
  'click.timestamp',
  'subscription',
  'subscription.timestamp',
] as const;

/** Fields SES fills with text. */
const TEXT_PATHS = [
  'mail.messageId',
  'mail.timestamp',
  'mail.destination.0',
  `mail.tags.${TAG}.0`,
  'bounce.bounceSubType',
  'bounce.bouncedRecipients.0.emailAddress',
  'bounce.bouncedRecipients.0.diagnosticCode',
  'bounce.feedbackId',
  'complaint.complainedRecipients.0.emailAddress',
  'complaint.complaintFeedbackType',
  'complaint.feedbackId',
  'delivery.recipients.0',
  'delivery.smtpResponse',
  'deliveryDelay.delayedRecipients.0.emailAddress',
  'deliveryDelay.delayType',
  'reject.reason',
  'failure.errorMessage',
] as const;

/** Fields that may quote a recipient's address: where an erased address could come back from. */
const QUOTING_PATHS = [
  'bounce.bouncedRecipients.0.diagnosticCode',
  'delivery.smtpResponse',
  'deliveryDelay.delayedRecipients.0.diagnosticCode',
] as const;

const typeName = fc.oneof(
  // What SES sends, in other spellings.
  fc.constantFrom(
    'Bounce',
    'BOUNCE',
    'bounce',
    'Complaint',
    'Delivery',
    'DeliveryDelay',
    'deliverydelay',
    'Send',
    'Reject',
    'Rendering Failure',
    'RenderingFailure',
    'Open',
    'Click',
    'Subscription',
  ),
  // What it does not.
  fc.constantFrom(
    '',
    ' Bounce',
    'Bounce ',
    'Bounces',
    'Delivery_Delay',
    'Received',
    'AmazonSnsSubscriptionSucceeded',
    'constructor',
    '__proto__',
    'hasOwnProperty',
    'toString',
  ),
  fc.string({ maxLength: 16 }),
);

const field = fieldMutations({
  paths: PATHS,
  textPaths: TEXT_PATHS,
  replaceDepth: 2,
  hugeSize: fc.oneof(
    { arbitrary: fc.integer({ min: 1_000, max: 5_000 }), weight: 19 },
    // Up to what an SQS message holds (256 KB), rarely: every copy of it costs.
    { arbitrary: fc.integer({ min: 5_000, max: 250_000 }), weight: 1 },
  ),
  hugeChars: ['a', 'é', '😀', ' ', '@'],
  unicodeExtras: ['\u{1F4A9}', '\uD800', '\u202e', '\u0000'],
});

const mutation = fc.oneof(
  field.drop,
  fc.record({
    kind: fc.constant('rename' as const),
    path: fc.constantFrom(...PATHS),
    how: fc.constantFrom('capitalise', 'lower', 'upper', 'suffix'),
  }),
  field.replace,
  field.retype,
  field.huge,
  field.unicode,
  fc.record({ kind: fc.constant('type' as const), value: typeName }),
  fc.record({ kind: fc.constant('otherType' as const), value: typeName }),
  fc.record({
    kind: fc.constant('bounceType' as const),
    value: fc.constantFrom('Permanent', 'Transient', 'Undetermined', 'permanent', 'PERMANENT', ''),
  }),
  fc.record({
    kind: fc.constant('bouncedRecipient' as const),
    index: fc.nat(2),
    action: fc.constantFrom('failed', 'delayed', 'DELAYED', 'relayed', 'expanded', ''),
    status: fc.constantFrom('5.1.1', '4.4.7', '4.0.0', '5.0.0', '4', '', 'x.1.1'),
  }),
  fc.record({ kind: fc.constant('repeatRecipients' as const) }),
  fc.record({ kind: fc.constant('quote' as const), path: fc.constantFrom(...QUOTING_PATHS) }),
  fc.record({
    kind: fc.constant('noise' as const),
    where: fc.constantFrom('', 'mail', 'bounce', 'delivery', `mail.tags`),
    name: fc.oneof(
      fc.constantFrom('__proto__', 'constructor', 'toString', 'prototype'),
      fc.string({ maxLength: 12 }),
    ),
    value: fc.jsonValue({ maxDepth: 2 }),
  }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

const WRAPS = ['raw', 'raw', 'sns', 'sns', 'sns-pretty', 'sns-object', 'sns-nested'] as const;

const envelopeMutation = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), key: fc.constantFrom('Type', 'TopicArn', 'Message') }),
  fc.record({
    kind: fc.constant('type' as const),
    value: fc.oneof(
      fc.constantFrom('SubscriptionConfirmation', 'UnsubscribeConfirmation', 'notification', ' Notification'),
      fc.string({ maxLength: 12 }).filter((s) => s !== 'Notification'),
    ),
  }),
  fc.record({
    kind: fc.constant('retype' as const),
    key: fc.constantFrom('Type', 'TopicArn', 'Message'),
    to: fc.constantFrom('number', 'null', 'array', 'object'),
  }),
);
type EnvelopeMutation = typeof envelopeMutation extends fc.Arbitrary<infer E> ? E : never;

const textMutation = fc.oneof(
  fc.record({
    kind: fc.constant('truncate' as const),
    fraction: fc.double({ min: 0, max: 0.999, noNaN: true }),
  }),
  fc.record({
    kind: fc.constant('prefix' as const),
    text: fc.constantFrom('\uFEFF', 'x', ")]}'\n", '\u0000'),
  }),
  fc.record({ kind: fc.constant('suffix' as const), text: fc.constantFrom('}', ',', 'x', '\u0000', '{}') }),
  fc.record({ kind: fc.constant('blank' as const), text: fc.constantFrom(' ', '\n', '\t\r\n') }),
  fc.record({
    kind: fc.constant('replace' as const),
    text: fc.oneof(
      fc.constantFrom('', 'null', '42', '"text"', '[]', '[{}]', 'true', '{}', 'Test message.'),
      fc.string({ maxLength: 60 }),
    ),
  }),
);
type TextMutation = typeof textMutation extends fc.Arbitrary<infer T> ? T : never;

const eventSpec = fc.record({
  template: fc.nat(TEMPLATES.length - 1),
  target,
  recipients,
  time,
  mutations: fc.array(mutation, { maxLength: 3 }),
  wrap: fc.constantFrom(...WRAPS),
  envelope: fc.oneof(
    { arbitrary: fc.constant([] as EnvelopeMutation[]), weight: 6 },
    { arbitrary: fc.array(envelopeMutation, { minLength: 1, maxLength: 2 }), weight: 1 },
  ),
  text: fc.option(textMutation, { nil: undefined, freq: 8 }),
});
type EventSpec = typeof eventSpec extends fc.Arbitrary<infer E> ? E : never;

/** Each template as JSON text: parsing it again is the cheapest deep copy. */
const TEMPLATE_TEXTS: readonly string[] = TEMPLATES.map((t) => JSON.stringify(t.payload));

function templateAt(index: number): SesTemplate {
  const t = TEMPLATES[index % TEMPLATES.length];
  if (t === undefined) throw new Error('no SES templates in the fixtures');
  return t;
}

/** The known message a target names, if it names one. */
function targetOf(t: SesTemplate, aim: Target): KnownMessage | undefined {
  if (aim.by === 'tag') return CATALOGUE.find((m) => m.id === aim.id);
  const ses = aim.by === 'ses' ? aim.id : getAt(t.payload, 'mail.messageId');
  return CATALOGUE.find((m) => m.sesMessageId === ses);
}

/** The messages whose id or SES message id a body spells out. */
function mentioned(bodies: readonly string[]): Set<string> {
  const ids = new Set<string>();
  for (const m of CATALOGUE) {
    if (bodies.some((b) => b.includes(m.id) || (m.sesMessageId !== undefined && b.includes(m.sesMessageId))))
      ids.add(m.id);
  }
  return ids;
}

/** The messages a batch can reach: what the events aim at, and their fixtures' own messages. */
function reachable(events: readonly EventSpec[]): Set<string> {
  const ids = new Set<string>();
  for (const e of events) {
    const t = templateAt(e.template);
    for (const m of [targetOf(t, e.target), targetOf(t, { by: 'fixture' })]) if (m) ids.add(m.id);
  }
  return ids;
}

function aimAt(payload: Json, aim: Target): void {
  const mail = objectAt(payload, 'mail');
  if (mail === undefined) return;
  if (aim.by === 'tag') {
    mail.tags = { ...(objectAt(mail, 'tags') ?? {}), [TAG]: [aim.id] };
  } else if (aim.by === 'ses') {
    mail.messageId = aim.id;
  }
}

function recase(address: string, i: number): string {
  const at = address.lastIndexOf('@');
  if (i % 2 === 0) return address.toUpperCase();
  return `${address.slice(0, at)}@${address.slice(at + 1).toUpperCase()}`;
}

function chooseRecipients(payload: Json, spec: Recipients, known: KnownMessage | undefined): void {
  let list: string[];
  if (spec.from === 'keep') return;
  if (spec.from === 'target') {
    const pool = known?.addresses ?? [];
    if (pool.length === 0) return;
    list = [...new Set(spec.pick.map((n) => pool[n % pool.length] ?? ''))].map((a, i) =>
      spec.recase ? recase(a, i) : a,
    );
  } else {
    list = spec.list;
  }
  const layout = layoutOf(payload);
  setAt(payload, 'mail.destination', list);
  if (layout.section && layout.list) {
    const path = `${layout.section}.${layout.list}`;
    const first = (getAt(payload, `${path}.0`) as Json | undefined) ?? {};
    setAt(payload, path, layout.objects ? list.map((emailAddress) => ({ ...first, emailAddress })) : list);
  }
}

function setTime(payload: Json, spec: Time): void {
  if (spec.at === 'keep') return;
  const at = typeof spec.at === 'number' ? new Date(spec.at).toISOString() : spec.at;
  setAt(payload, 'mail.timestamp', at);
  const section = layoutOf(payload).section;
  if (section) setAt(payload, `${section}.timestamp`, at);
}

function firstRecipient(payload: Json): string {
  const [first] = addressesIn(payload);
  return first ?? ERIN;
}

function applyMutation(payload: Json, m: Mutation): void {
  if (isJsonMutation(m)) {
    applyJsonMutation(payload, m);
    return;
  }
  switch (m.kind) {
    case 'rename': {
      const last = m.path.split('.').pop() ?? '';
      const to = {
        capitalise: `${last.charAt(0).toUpperCase()}${last.slice(1)}`,
        lower: last.toLowerCase(),
        upper: last.toUpperCase(),
        suffix: `${last}_`,
      }[m.how];
      renameAt(payload, m.path, to);
      return;
    }
    case 'type':
      setAt(payload, typeof payload.eventType === 'string' ? 'eventType' : 'notificationType', m.value);
      return;
    case 'otherType':
      setAt(payload, typeof payload.eventType === 'string' ? 'notificationType' : 'eventType', m.value);
      return;
    case 'bounceType':
      setAt(payload, 'bounce.bounceType', m.value);
      return;
    case 'bouncedRecipient':
      setAt(payload, `bounce.bouncedRecipients.${m.index}.action`, m.action);
      setAt(payload, `bounce.bouncedRecipients.${m.index}.status`, m.status);
      return;
    case 'repeatRecipients': {
      const layout = layoutOf(payload);
      const path = layout.section && layout.list ? `${layout.section}.${layout.list}` : 'mail.destination';
      const list = getAt(payload, path);
      if (Array.isArray(list)) setAt(payload, path, [...list, ...structuredClone(list)]);
      return;
    }
    case 'quote': {
      const address = firstRecipient(payload);
      setAt(payload, m.path, `smtp; 550 5.1.1 <${address}>... user unknown (${address.toUpperCase()})`);
      return;
    }
    case 'noise': {
      const parent = m.where === '' ? payload : getAt(payload, m.where);
      if (typeof parent === 'object' && parent !== null && !Array.isArray(parent)) {
        setAt(parent as Json, m.name, m.value);
      }
      return;
    }
  }
}

function envelopeOf(t: SesTemplate, message: unknown): Json {
  const base = t.envelope ?? (JSON.parse(snsEnvelope('')) as Json);
  return { ...base, Message: message };
}

function mutateEnvelope(envelope: Json, m: EnvelopeMutation): void {
  switch (m.kind) {
    case 'drop':
      delete envelope[m.key];
      return;
    case 'type':
      envelope.Type = m.value;
      return;
    case 'retype':
      envelope[m.key] = {
        number: 7,
        null: null,
        array: [envelope[m.key]],
        object: { value: envelope[m.key] },
      }[m.to];
      return;
  }
}

function mutateText(text: string, m: TextMutation): string {
  switch (m.kind) {
    case 'truncate': {
      const trimmed = text.trimEnd();
      return trimmed.slice(0, Math.floor(trimmed.length * m.fraction));
    }
    case 'prefix':
      return `${m.text}${text}`;
    case 'suffix':
      return `${text}${m.text}`;
    case 'blank':
      return `${m.text}${text}${m.text}`;
    case 'replace':
      return m.text;
  }
}

/** The queue body an event spec stands for. Deterministic: the same spec, the same body. */
function bodyOf(e: EventSpec): string {
  const t = templateAt(e.template);
  const payload = JSON.parse(TEMPLATE_TEXTS[e.template % TEMPLATES.length] ?? '{}') as Json;
  aimAt(payload, e.target);
  chooseRecipients(payload, e.recipients, targetOf(t, e.target));
  setTime(payload, e.time);
  for (const m of e.mutations) applyMutation(payload, m);
  let body: string;
  if (e.wrap === 'raw') {
    body = JSON.stringify(payload);
  } else {
    const message = {
      sns: JSON.stringify(payload),
      'sns-pretty': JSON.stringify(payload, null, 4),
      'sns-object': payload,
      'sns-nested': snsEnvelope(JSON.stringify(payload)),
    }[e.wrap];
    const envelope = envelopeOf(t, message);
    for (const m of e.envelope) mutateEnvelope(envelope, m);
    body = JSON.stringify(envelope, null, e.wrap === 'sns-pretty' ? 2 : undefined);
  }
  return e.text === undefined ? body : mutateText(body, e.text);
}

/** A body as a well-behaved SES would send it: fixture payload aimed at a known message, untouched. */
const validEventSpec = fc.record({
  template: fc.nat(TEMPLATES.length - 1),
  target: fc.oneof(
    fc.constant({ by: 'fixture' as const }),
    fc.record({ by: fc.constant('tag' as const), id: fc.constantFrom(...KNOWN_IDS) }),
  ),
  recipients: fc.oneof(
    fc.constant({ from: 'keep' as const }),
    fc.record({
      from: fc.constant('target' as const),
      pick: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
      recase: fc.boolean(),
    }),
  ),
  time: fc.constant({ at: 'keep' as const }),
  mutations: fc.constant([] as Mutation[]),
  wrap: fc.constantFrom('raw' as const, 'sns' as const, 'sns-pretty' as const),
  envelope: fc.constant([] as EnvelopeMutation[]),
  text: fc.constant(undefined),
});

/** Bodies that are not made from a fixture at all, or barely. */
const garbageBody = fc.oneof(
  fc.constantFrom(...CORPUS.foreign),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.json({ maxDepth: 4 }),
  fc
    .record(
      {
        eventType: typeName,
        notificationType: typeName,
        mail: fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.record(
            {
              messageId: fc.oneof(fc.constantFrom(...KNOWN_SES_IDS), fc.string({ maxLength: 10 })),
              timestamp: fc.oneof(
                fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
                fc.string(),
              ),
              destination: fc.oneof(fc.array(oddAddress, { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })),
              tags: fc.oneof(
                fc.record({
                  [TAG]: fc.oneof(fc.tuple(fc.constantFrom(...KNOWN_IDS)), fc.jsonValue({ maxDepth: 1 })),
                }),
                fc.jsonValue({ maxDepth: 2 }),
              ),
            },
            { requiredKeys: [] },
          ),
        ),
        bounce: fc.oneof(
          fc.record(
            {
              bounceType: fc.constantFrom('Permanent', 'Transient', 'Undetermined'),
              bouncedRecipients: fc.array(
                fc.oneof(
                  fc.record(
                    { emailAddress: oddAddress, action: fc.string(), status: fc.string() },
                    { requiredKeys: [] },
                  ),
                  fc.jsonValue({ maxDepth: 1 }),
                ),
                { maxLength: 3 },
              ),
            },
            { requiredKeys: [] },
          ),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        complaint: fc.record(
          { complainedRecipients: fc.array(fc.record({ emailAddress: oddAddress }), { maxLength: 3 }) },
          { requiredKeys: [] },
        ),
        delivery: fc.record({ recipients: fc.array(oddAddress, { maxLength: 3 }) }, { requiredKeys: [] }),
      },
      { requiredKeys: [] },
    )
    .chain((ses) =>
      fc
        .constantFrom('raw', 'sns')
        .map((wrap) => (wrap === 'raw' ? JSON.stringify(ses) : snsEnvelope(JSON.stringify(ses)))),
    ),
);

// ---------------------------------------------------------------------------------------------
// Running: batches, redeliveries, the queue's receives

/**
 * Mostly a few records, now and then a fuller batch: ten records contending for one message is
 * the costly case, so it comes up less often, but it comes up.
 */
function batchOf<T>(item: fc.Arbitrary<T>, min: number, max: number): fc.Arbitrary<T[]> {
  const few = Math.max(min, Math.min(3, max));
  return fc.oneof(
    { arbitrary: fc.array(item, { minLength: min, maxLength: few }), weight: 4 },
    { arbitrary: fc.array(item, { minLength: few, maxLength: max }), weight: 1 },
  );
}

/** How many records each receive takes from the queue. */
const batchSizes = fc.array(fc.integer({ min: 1, max: BATCH_SIZE }), { minLength: 1, maxLength: 3 });

function recordsOf(bodies: readonly string[], invocation: number): SQSRecord[] {
  return bodies.map((body, i) =>
    sqsRecord(body, { messageId: `sqs-${invocation}-${i}`, receiveCount: invocation }),
  );
}

/** One invocation, checked for its shape; the traces it made. */
async function invokeChecked(
  world: FeedbackWorld,
  records: readonly SQSRecord[],
): Promise<{ response: SQSBatchResponse; traces: RecordTrace[] }> {
  const from = world.traces.length;
  const response = await world.invoke(records);
  const traces = world.traces.slice(from);
  // The function answers every record: no id it was not given, none twice, one trace per record.
  const ids = new Set(records.map((r) => r.messageId));
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  ensure(failed.size === response.batchItemFailures.length, () => 'a record reported failed twice');
  for (const id of failed) ensure(ids.has(id), () => `a failure for ${id}, not in the batch`);
  ensure(
    traces.length === records.length && traces.every((t) => ids.has(t.record.messageId)),
    () => 'not one processing per record',
  );
  // Reported failed exactly when its processing threw.
  for (const t of traces) {
    ensure(
      failed.has(t.record.messageId) === t.failed,
      () =>
        `record ${t.record.messageId} threw=${t.failed}, reported failed=${failed.has(t.record.messageId)}`,
    );
  }
  return { response, traces };
}

/**
 * Delivers `bodies` as SQS would until each is acknowledged or has been received
 * MAX_RECEIVE_COUNT times (then it is dead-lettered): in batches of `sizes` (cycled), failed
 * records going back in the queue.
 */
async function deliverAll(
  world: FeedbackWorld,
  bodies: readonly string[],
  sizes: readonly number[] = [BATCH_SIZE],
): Promise<{ deadLettered: string[] }> {
  let queue = bodies.map((body) => ({ body, receives: 0 }));
  const deadLettered: string[] = [];
  let round = 0;
  while (queue.length > 0) {
    const size = Math.max(1, Math.min(BATCH_SIZE, sizes[round % sizes.length] ?? BATCH_SIZE));
    round += 1;
    const batch = queue.slice(0, size);
    queue = queue.slice(size);
    const records = recordsOf(
      batch.map((b) => b.body),
      round,
    );
    const { traces } = await invokeChecked(world, records);
    batch.forEach((b, i) => {
      const trace = traces.find((t) => t.record === records[i]);
      if (!trace?.failed) return;
      if (b.receives + 1 >= MAX_RECEIVE_COUNT) deadLettered.push(b.body);
      else queue.push({ body: b.body, receives: b.receives + 1 });
    });
  }
  return { deadLettered };
}

// ---------------------------------------------------------------------------------------------
// The checks. Plain comparisons, not `expect`, in the loops: they run for every record of every
// case, and building assertion messages eagerly would cost more than the function under test.

function ensure(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new Error(message());
}

function explain(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message.slice(0, 200)}` : String(error);
}

function show(body: string): string {
  return JSON.stringify(body.length > 400 ? `${body.slice(0, 400)}…` : body);
}

const NOT_JSON = Symbol('not JSON');

/** What is read from each body more than once (a case reads each body for every check). */
interface Reading {
  /** `JSON.parse(body)`, or NOT_JSON. */
  readonly outer: unknown;
  readonly ses: Json | undefined;
  /** The SES type, lower-cased; '' when there is none. */
  readonly type: string;
}

/** Bodies repeat within a case, rarely across: small memos, emptied when they grow. */
const readings = new Map<string, Reading>();
const keys = new Map<string, string | undefined>();

function remember<V>(memo: Map<string, V>, body: string, value: V): V {
  if (memo.size > 2_000) memo.clear();
  memo.set(body, value);
  return value;
}

function read(body: string): Reading {
  const known = readings.get(body);
  if (known !== undefined) return known;
  let outer: unknown;
  try {
    outer = JSON.parse(body);
  } catch {
    outer = NOT_JSON;
  }
  const ses = outer === NOT_JSON ? undefined : sesJsonFrom(outer);
  const type = (stringAt(ses, 'eventType') ?? stringAt(ses, 'notificationType') ?? '').toLowerCase();
  return remember(readings, body, { outer, ses, type });
}

/** The code's own identity of the event a body carries (`parseFeedback(...).key`), if it parses. */
function keyOf(body: string): string | undefined {
  if (keys.has(body)) return keys.get(body);
  let key: string | undefined;
  try {
    key = parseFeedback(body).key;
  } catch {
    key = undefined;
  }
  return remember(keys, body, key);
}

/** The SES message ids the message records carry now (ids are only ever added). */
function knownSesIds(world: FeedbackWorld): Set<string> {
  const ids = new Set<string>();
  for (const r of world.messages.records()) if (r.sesMessageId !== undefined) ids.add(r.sesMessageId);
  return ids;
}

/**
 * Why a body cannot be acknowledged, by the rules of SQS, SNS and SES alone (not by asking the
 * parser), or undefined. A reason starting "names" is an event for a message Baton has no record
 * of: retried, then dead-lettered, but not malformed.
 */
function mustFail(body: string, world: FeedbackWorld, sesIds: Set<string>): string | undefined {
  const { outer, ses, type } = read(body);
  if (outer === NOT_JSON) return 'not JSON';
  if (typeof outer !== 'object' || outer === null || Array.isArray(outer)) return 'not a JSON object';
  const o = outer as Json;
  if (typeof o.Type === 'string' && typeof o.TopicArn === 'string') {
    if (o.Type !== 'Notification') return 'an SNS message that is not a notification';
    if (typeof o.Message !== 'string') return 'an SNS notification without a string Message';
  }
  if (ses === undefined) return 'an SNS Message that is not a JSON object';
  if (!SES_TYPES.has(type)) return 'not a type SES publishes';
  const mail = objectAt(ses, 'mail');
  if (mail === undefined) return 'no mail object';
  const sesMessageId = stringAt(mail, 'messageId');
  if (!sesMessageId) return 'no SES message id';
  const tag = objectAt(mail, 'tags')?.[TAG];
  const batonId = Array.isArray(tag) && typeof tag[0] === 'string' && tag[0] !== '' ? tag[0] : undefined;
  if (batonId !== undefined) {
    if (world.messages.current(batonId) === undefined) return 'names a Baton message id no record has';
  } else if (!sesIds.has(sesMessageId)) {
    return 'names an SES message id no record has';
  }
  return undefined;
}

/** Malformed input is malformed, not a crash; the rest are the retryable reasons the consumer knows. */
function isKnownFailure(error: unknown): boolean {
  return (
    error instanceof MalformedFeedbackError ||
    error instanceof UnknownMessageError ||
    error instanceof TransientError ||
    error instanceof ConflictError
  );
}

/** The one key a message write added to `seen`. */
function addedKey(before: MessageRecord, after: MessageRecord): string | undefined {
  const added = after.seen.filter((k) => !before.seen.includes(k));
  return added.length === 1 ? added[0] : undefined;
}

const statusOf = (r: { status: string; soft?: boolean }): string => `${r.status}${r.soft ? ' (soft)' : ''}`;

/** Recipients never go backwards; the revived failures of a given-up message are the one exception. */
function checkMessageWrites(world: FeedbackWorld): void {
  for (const { before, after, by } of world.messages.writes) {
    const where = (): string => `write of ${before.id} by ${by?.record.messageId ?? 'nobody'}`;
    ensure(by !== undefined, () => `${where()}: every write is some record's`);
    ensure(after.id === before.id && after.tenant === before.tenant, where);
    ensure(
      after.version === before.version + 1,
      () => `${where()}: version ${before.version} to ${after.version}`,
    );
    ensure(
      after.recipients.length === before.recipients.length &&
        after.recipients.every((r, i) => r.address === before.recipients[i]?.address),
      () => `${where()}: feedback neither adds nor removes recipients`,
    );
    const revived = before.phase === 'failed' && before.redrivable === true;
    after.recipients.forEach((a, i) => {
      const b = before.recipients[i];
      if (b === undefined) return;
      const floor =
        (revived || b.unsent === true) && b.status === 'failed'
          ? recipientRank({ status: 'sent' })
          : recipientRank(b);
      ensure(
        recipientRank(a) >= floor,
        () => `${where()}: ${b.address} went back from ${statusOf(b)} to ${statusOf(a)}`,
      );
    });
    ensure(
      after.events.length >= before.events.length &&
        JSON.stringify(after.events.slice(0, before.events.length)) === JSON.stringify(before.events),
      () => `${where()}: the timeline only grows`,
    );
    const key = addedKey(before, after);
    ensure(key !== undefined, () => `${where()}: one event applied, its key remembered`);
    ensure(
      key === keyOf(by.record.body),
      () => `${where()}: applied ${key}, not the key of the event the record carries`,
    );
    ensure(
      before.sesMessageId === undefined || after.sesMessageId === before.sesMessageId,
      () => `${where()}: the SES message id, once known, stays`,
    );
  }
}

/** How many messages' transient bounces the address has counted, now (the counts only grow in a case, but for deliveries). */
function softBounceCount(s: Suppression, world: FeedbackWorld): number {
  const evidence = Number(s.evidence?.transientBounces ?? 0);
  const stored = Object.keys(world.softBounces.states.get(s.address)?.bounces ?? {}).length;
  return Math.max(evidence, stored);
}

/** Why `s` may not come from this record's body, or undefined when SES said so. */
function unjustified(s: Suppression, body: string, world: FeedbackWorld): string | undefined {
  const { ses, type } = read(body);
  const named = (items: unknown, keep: (item: Json) => boolean): boolean =>
    Array.isArray(items) &&
    items.some((item) => {
      if (typeof item !== 'object' || item === null) return false;
      const address = stringAt(item, 'emailAddress');
      const n = address === undefined ? undefined : normaliseAddress(address);
      return n !== undefined && (s.address === n || s.address === fuzzErasedKeyOf(n)) && keep(item as Json);
    });
  const action = (item: Json): string => (stringAt(item, 'action') ?? '').toLowerCase();
  const delayed = (item: Json): boolean =>
    action(item) === 'delayed' || /^4\./.test(stringAt(item, 'status') ?? '');
  const bounce = objectAt(ses, 'bounce');
  if (s.severity !== SEVERITY[s.reason]) return `severity ${s.severity} for ${s.reason}`;
  switch (s.reason) {
    case 'complaint':
      return type === 'complaint' && named(objectAt(ses, 'complaint')?.complainedRecipients, () => true)
        ? undefined
        : 'a complaint suppression without a complaint naming the address';
    case 'hard_bounce':
      return type === 'bounce' &&
        stringAt(bounce, 'bounceType') === 'Permanent' &&
        named(bounce?.bouncedRecipients, (item) => !delayed(item))
        ? undefined
        : 'a hard-bounce suppression without a Permanent bounce of the address';
    // Counted transient bounces suppress, for a while, once there are enough of them. Usually the
    // count is reached by a transient bounce; a redelivered bounce of the address may offer the
    // suppression again while it brings the counts up to date (process-feedback.ts, `repair`).
    case 'soft_bounce':
      return type === 'bounce' &&
        named(bounce?.bouncedRecipients, () => true) &&
        s.expiresAt !== null &&
        softBounceCount(s, world) >= SOFT_BOUNCE_THRESHOLD
        ? undefined
        : 'a soft-bounce suppression without bounces of the address counted, or one that never expires';
    default:
      return `feedback never suppresses with reason ${s.reason}`;
  }
}

function checkSuppressions(world: FeedbackWorld): void {
  for (const { suppression: s, by } of world.suppressions.offered) {
    ensure(by !== undefined, () => `suppression of ${s.address} outside any record`);
    const why = unjustified(s, by.record.body, world);
    ensure(why === undefined, () => `${s.reason} of ${s.address}: ${why} (${show(by.record.body)})`);
  }
  for (const t of world.traces) {
    if (t.softBounceWrites.length === 0) continue;
    const { type } = read(t.record.body);
    ensure(
      type === 'bounce' || type === 'delivery',
      () => `only bounces and deliveries move soft-bounce counts, not ${show(t.record.body)}`,
    );
  }
}

/** Every record processed so far: acknowledged with its effect, or failed for a known reason. */
function checkRecords(world: FeedbackWorld): void {
  const sesIds = knownSesIds(world);
  for (const t of world.traces) {
    const where = (): string => `record ${t.record.messageId} ${show(t.record.body)}`;
    const doomed = mustFail(t.record.body, world, sesIds);
    if (t.failed) {
      ensure(isKnownFailure(t.error), () => `${where()} failed with ${explain(t.error)}`);
      if (doomed === undefined || doomed.startsWith('names')) continue;
      ensure(
        t.error instanceof MalformedFeedbackError,
        () => `${where()} is ${doomed}: malformed, not ${explain(t.error)}`,
      );
      continue;
    }
    ensure(doomed === undefined, () => `${where()} was acknowledged, yet it is ${doomed}`);
    const key = keyOf(t.record.body);
    ensure(key !== undefined, () => `${where()} was acknowledged, yet does not parse`);
    ensure(t.messageWrites.length <= 1, () => `${where()}: ${t.messageWrites.length} message writes`);
    const [write] = t.messageWrites;
    if (write !== undefined) {
      ensure(
        addedKey(write.before, write.after) === key,
        () => `${where()}: the write applied another event`,
      );
      continue;
    }
    // No write: the same event had been applied, by another delivery of it; or it is a Send event
    // for a message already recorded as sent (the sender wrote the send itself).
    const appliedBy = world.messages.writes.find(
      (w) =>
        w.by !== t &&
        w.by !== undefined &&
        w.by.invocation <= t.invocation &&
        addedKey(w.before, w.after) === key,
    );
    if (appliedBy !== undefined) continue;
    ensure(
      read(t.record.body).type === 'send' && namedRecords(t.record.body, world).some(recordedSent),
      () => `${where()} was acknowledged without effect: no redelivery, no Send for a message recorded sent`,
    );
  }
}

/** The message records a body names: by its Baton tag, else by its SES message id. */
function namedRecords(body: string, world: FeedbackWorld): MessageRecord[] {
  const mail = objectAt(read(body).ses, 'mail');
  const tag = objectAt(mail, 'tags')?.[TAG];
  const batonId = Array.isArray(tag) && typeof tag[0] === 'string' && tag[0] !== '' ? tag[0] : undefined;
  if (batonId !== undefined) {
    const r = world.messages.current(batonId);
    return r === undefined ? [] : [r];
  }
  const sesMessageId = stringAt(mail, 'messageId');
  return [...world.messages.records()].filter((r) => r.sesMessageId === sesMessageId);
}

/** Past the send in Baton's own records (a message never goes back to unsent through feedback). */
function recordedSent(r: MessageRecord): boolean {
  return !(r.phase === 'queued' || r.phase === 'sending' || (r.phase === 'failed' && r.redrivable === true));
}

function checkAll(world: FeedbackWorld): void {
  checkRecords(world);
  checkMessageWrites(world);
  checkSuppressions(world);
}

// ---------------------------------------------------------------------------------------------
// Unhandled rejections anywhere in the run fail it.

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

async function expectNoUnhandledRejection(): Promise<void> {
  // Rejections are reported after the microtask queue drains: give them a turn of the event loop.
  await new Promise((resolve) => setImmediate(resolve));
  expect(unhandled.map(explain)).toEqual([]);
}

beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
  console.info(
    `feedback fuzz: ${TOTAL_RUNS} cases, seed ${SEED} (BATON_FUZZ_RUNS, BATON_FUZZ_SEED); ` +
      `${TEMPLATES.length} SES templates and ${CORPUS.foreign.length} foreign bodies from the fixtures`,
  );
});

afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

const params = (runs: number, offset: number): { numRuns: number; seed: number } => ({
  numRuns: runs,
  seed: SEED + offset,
});

/**
 * One property of the suite as a test: `runs` cases of `cases` (seeded with the suite's seed plus
 * `offset`), each held to `check`; then no rejection went unhandled meanwhile.
 */
function fuzzProperty<T>(
  title: string,
  runs: number,
  offset: number,
  cases: fc.Arbitrary<T>,
  check: (c: T) => Promise<void>,
): void {
  it(
    title,
    async () => {
      await fc.assert(fc.asyncProperty(cases, check), params(runs, offset));
      await expectNoUnhandledRejection();
    },
    timeoutOf(runs),
  );
}

/**
 * One body per event: SES identifies a bounce or complaint by its feedbackId, so two bodies the
 * code keys alike are one event to it, and the first to arrive wins (some fixtures are hand-edited
 * copies of one capture that kept its feedbackId; re-aimed recipients can do the same). Order can
 * only be irrelevant between different events.
 */
function distinctEvents(bodies: readonly string[]): string[] {
  const byKey = new Map<string, string>();
  for (const body of bodies) {
    const key = keyOf(body);
    if (key !== undefined && !byKey.has(key)) byKey.set(key, body);
  }
  return [...byKey.values()];
}

/** Reorders `items` by `keys` (one per item, ties kept in order). */
function permute<T>(items: readonly T[], keys: readonly number[]): T[] {
  return items
    .map((item, i) => ({ item, key: keys[i % Math.max(1, keys.length)] ?? 0, i }))
    .sort((a, b) => a.key - b.key || a.i - b.i)
    .map((x) => x.item);
}

// ---------------------------------------------------------------------------------------------

// Thousands of generated cases: the unit tier's 5 s is a hang guard for one example, not for
// a property, and a loaded 2-core machine takes twice its usual time.
describe('the feedback function under bad input (issue 6, "Bad input")', {
  timeout: PROPERTY_TIMEOUT_MS,
}, () => {
  it('finds every SES event type, bare and in SNS envelopes, among the fixtures', () => {
    // Assess: the corpus is what the properties below mutate; a type it lacked would go untested.
    expect(TEMPLATES.length).toBeGreaterThanOrEqual(25);
    // Every type SES publishes, Rendering Failure in one of its two spellings.
    expect(new Set(TEMPLATES.map((t) => typeOf(t.payload)))).toEqual(
      new Set([...SES_TYPES].filter((type) => type !== 'renderingfailure')),
    );
    expect(TEMPLATES.filter((t) => t.envelope !== undefined).length).toBeGreaterThanOrEqual(5);
  });

  const corpusRuns = runsOf(SHARE.corpus);
  fuzzProperty(
    `acknowledges a mutated fixture batch only with its effect, else reports the record failed (${corpusRuns} batches)`,
    corpusRuns,
    1,
    // Prepare
    fc.record({
      world: worldSpec,
      events: batchOf(eventSpec, 1, BATCH_SIZE),
      duplicates: fc.array(fc.nat(), { maxLength: 2 }),
      redeliveries: fc.array(fc.nat(), { maxLength: 2 }),
    }),
    // Act / Assess
    async (b) => {
      const world = buildWorld(b.world, { only: reachable(b.events) });
      const bodies = b.events.map(bodyOf);
      // The same message delivered twice in one batch (SQS is at-least-once).
      for (const n of b.duplicates) bodies.push(bodies[n % bodies.length] ?? '');
      const first = recordsOf(bodies.slice(0, BATCH_SIZE), 1);
      const { traces } = await invokeChecked(world, first);
      // The next receive, past the race window: the failures come back, and so do some acknowledged.
      world.clock.advance(RACE_WINDOW_MS + 60_000);
      const again = [
        ...traces.filter((t) => t.failed).map((t) => t.record.body),
        ...b.redeliveries.map((n) => first[n % first.length]?.body ?? ''),
      ];
      if (again.length > 0) await invokeChecked(world, recordsOf(again.slice(0, BATCH_SIZE), 2));
      checkAll(world);
    },
  );

  const garbageRuns = runsOf(SHARE.garbage);
  fuzzProperty(
    `holds bodies little or nothing like SES feedback (other Lambda events, random JSON and text) to the same rules (${garbageRuns} batches)`,
    garbageRuns,
    2,
    // Prepare
    fc.record({
      world: worldSpec,
      bodies: batchOf(garbageBody, 1, BATCH_SIZE),
    }),
    // Act / Assess
    async (b) => {
      const world = buildWorld(b.world, { only: mentioned(b.bodies) });
      await invokeChecked(world, recordsOf(b.bodies, 1));
      checkAll(world);
    },
  );

  const validRuns = runsOf(SHARE.valid);
  fuzzProperty(
    `applies every valid fixture event to its seeded message within the queue's receives, recipients never going backwards (${validRuns} batches)`,
    validRuns,
    3,
    // Prepare
    fc.record({
      world: worldSpec,
      events: batchOf(validEventSpec, 1, BATCH_SIZE),
      duplicates: fc.array(fc.nat(), { maxLength: 3 }),
      sizes: batchSizes,
    }),
    // Act / Assess
    async (b) => {
      const world = buildWorld(b.world, { allPresent: true, only: reachable(b.events) });
      const bodies = b.events.map(bodyOf);
      for (const n of b.duplicates) bodies.push(bodies[n % bodies.length] ?? '');
      const { deadLettered } = await deliverAll(world, bodies, b.sizes);
      expect(deadLettered, 'valid feedback for a known message is never dead-lettered').toEqual([]);
      // Only lost write races fail valid feedback (records of one batch run in parallel).
      for (const t of world.traces.filter((x) => x.failed)) {
        expect(
          t.error instanceof ConflictError || t.error instanceof PartlyAppliedError,
          explain(t.error),
        ).toBe(true);
      }
      checkAll(world);
    },
  );

  const orderRuns = runsOf(SHARE.order);
  fuzzProperty(
    `ends in the same recipient states and suppressions whatever the order, batching and duplication of the events (${orderRuns} pairs)`,
    orderRuns,
    4,
    // Prepare
    fc.record({
      world: worldSpec,
      events: batchOf(validEventSpec, 2, 8),
      duplicates: fc.array(fc.nat(), { minLength: 1, maxLength: 2 }),
      order: fc.array(fc.nat(1_000), { minLength: 1, maxLength: 14 }),
      sizesA: batchSizes,
      sizesB: batchSizes,
    }),
    // Act / Assess
    async (b) => {
      const bodies = distinctEvents(b.events.map(bodyOf));
      const withDuplicates = [...bodies, ...b.duplicates.map((n) => bodies[n % bodies.length] ?? '')];
      const only = reachable(b.events);
      const a = buildWorld(b.world, { allPresent: true, only });
      const z = buildWorld(b.world, { allPresent: true, only });
      expect((await deliverAll(a, permute(withDuplicates, b.order), b.sizesA)).deadLettered).toEqual([]);
      expect((await deliverAll(z, bodies, b.sizesB)).deadLettered).toEqual([]);
      checkAll(a);
      checkAll(z);
      expect(await outcome(a)).toEqual(await outcome(z));
    },
  );

  const erasureRuns = runsOf(SHARE.erasure);
  // Prepare
  const spelling = fc.constantFrom(ERIN, 'Erin@Erased.Example', 'ERIN@ERASED.EXAMPLE', 'erin@ERASED.example');
  const erasureEvent = fc.record({
    template: fc.nat(TEMPLATES.length - 1),
    target: fc.constantFrom({ by: 'tag' as const, id: 'msg_t0' }, { by: 'ses' as const, id: 'ses-t0' }),
    recipients: fc.tuple(spelling, fc.boolean()).map(([erin, withAna]) => ({
      from: 'any' as const,
      list: withAna ? [erin, 'ana@example.org'] : [erin],
    })),
    time: fc.constant({ at: 'keep' as const }),
    mutations: fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('quote' as const), path: fc.constantFrom(...QUOTING_PATHS) }),
        fc.record({
          kind: fc.constant('bounceType' as const),
          value: fc.constantFrom('Permanent', 'Transient'),
        }),
      ),
      { maxLength: 3 },
    ),
    wrap: fc.constantFrom('raw' as const, 'sns' as const),
    envelope: fc.constant([] as EnvelopeMutation[]),
    text: fc.constant(undefined),
  });
  fuzzProperty(
    `never writes an erased address back, whatever feedback names or quotes it (${erasureRuns} batches)`,
    erasureRuns,
    5,
    fc.record({
      world: worldSpec,
      events: batchOf(erasureEvent, 1, 6),
    }),
    // Act / Assess
    async (b) => {
      const world = buildWorld(b.world, { allPresent: true, erased: true });
      await deliverAll(world, b.events.map(bodyOf));
      checkAll(world);
      const record = JSON.stringify(world.messages.peek('msg_t0')).toLowerCase();
      expect(record, 'the erased record quotes the address again').not.toContain(ERIN);
      expect(world.suppressions.peek(ERIN), 'a suppression under the erased address').toBeUndefined();
      expect(world.softBounces.states.has(ERIN), 'a soft-bounce count under the erased address').toBe(false);
    },
  );
});

describe('what fuzzing the feedback function found (issue 6), reduced', () => {
  it.each(['constructor', '__proto__', 'CONSTRUCTOR'])(
    'refuses the SES type "%s" as malformed, like every type SES does not publish',
    (type) => {
      // Prepare: a name of Object.prototype's, which a plain object lookup finds.
      const body = JSON.stringify({
        eventType: type,
        mail: { messageId: 'ses-1', destination: ['ana@example.org'] },
      });

      // Act
      const parse = (): unknown => parseFeedback(body);

      // Assess
      expect(parse).toThrow(MalformedFeedbackError);
      expect(parse).toThrow(new MalformedFeedbackError(`unknown SES event type "${type}"`));
    },
  );

  it('never writes an erased address back into its record, not even inside the SMTP response of a later delivery', async () => {
    // Prepare
    const world = feedbackWorld(NOW);
    const sent = messageRecord({ id: 'msg_1', phase: 'sent', recipients: [recipient(ERIN, 'sent')] });
    world.messages.seed(eraseFromRecord(sent, ERIN_KEY, fuzzErasedKeyOf) ?? sent);
    world.suppressions.seed(tombstoneFor(ERIN, ERIN_KEY, undefined, new Date(NOW), 'tenant-a'));
    const delivery = sesEventBody({
      eventType: 'Delivery',
      batonMessageId: 'msg_1',
      destination: [ERIN],
      sections: {
        delivery: {
          timestamp: '2025-03-01T11:59:00.000Z',
          recipients: [ERIN],
          smtpResponse: `250 2.1.5 <${ERIN}> ok`,
        },
      },
    });

    // Act
    const response = await world.invoke([sqsRecord(delivery)]);

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(world.messages.peek('msg_1')?.recipients).toEqual([
      expect.objectContaining({ address: ERIN_KEY, status: 'delivered' }),
    ]);
    expect(JSON.stringify(world.messages.peek('msg_1'))).not.toContain(ERIN);
  });
});

/**
 * What order must not change: each recipient's status, the timeline's entries, the strong
 * suppressions. Not the keys in `seen`: a Send event is only written while the message is unsent,
 * so whether its key is remembered depends on what came first.
 */
async function outcome(world: FeedbackWorld): Promise<unknown> {
  const messages = CATALOGUE.map((m) => world.messages.peek(m.id)).flatMap((r) =>
    r === undefined
      ? []
      : [
          {
            id: r.id,
            // `soft` only means something on a bounce (a reject leaves a soft bounce's flag behind).
            recipients: r.recipients.map((x) => ({
              address: x.address,
              status: x.status,
              soft: x.status === 'bounced' && x.soft === true,
            })),
            events: r.events.map((e) => `${e.type} ${addressKey(e.recipient ?? '')}`).sort(),
          },
        ],
  );
  return { messages, suppressions: await strongSuppressions(world) };
}

/** Hard bounces and complaints on the list (soft bounces depend on order: a delivery may come too late). */
async function strongSuppressions(world: FeedbackWorld): Promise<string[]> {
  const { items } = await world.suppressions.list(10_000);
  return items.filter((s) => s.severity >= SEVERITY.hard_bounce).map((s) => `${s.address} ${s.reason}`);
}
