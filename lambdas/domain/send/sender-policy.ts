import { addressesShownIn, domainAllowed, domainOf, type Mailbox } from '../address.ts';
import type { ApiKey } from '../keys/api-key.ts';
import type { OutgoingMessage } from '../message.ts';
import { type FieldError, fail, INVALID_MESSAGE } from '../problem.ts';

/**
 * Applies the key's sender policy (DESIGN §4). A From outside the key's domains is refused, or,
 * for keys whose policy is `rewrite`, replaced by the key's verified default address: the
 * original name stays (without any address in it), the original address goes to Reply-To
 * (unless one was given) and X-Original-From, so legacy senders keep working without spoofing a
 * domain SES cannot sign for. A From or Reply-To whose display name shows an address of another
 * domain is refused (422): `"support@paypal.com" <noreply@tenant>` reads as PayPal in most clients.
 */
export function applySenderPolicy(key: ApiKey, message: OutgoingMessage): OutgoingMessage {
  const allowed = checkSenderDomain(key, message.from.address);
  const errors = [
    ...spoofingErrors(key, 'from', message.from),
    ...message.replyTo.flatMap((m, i) => spoofingErrors(key, `replyTo[${i}]`, m)),
  ];
  if (errors.length > 0) fail('invalid_message', INVALID_MESSAGE, errors);
  if (allowed || !key.defaultFrom) return message;

  const original = message.from;
  const from: Mailbox = { name: rewrittenName(original), address: key.defaultFrom };
  return {
    ...message,
    from,
    replyTo: message.replyTo.length > 0 ? message.replyTo : [original],
    originalFrom: original,
  };
}

/**
 * Whether `key` may send from `address` as it is (true), or only rewritten to its default address
 * (false); refused (403) when it may not send from there at all. Also the SMTP envelope sender's
 * check (MAIL FROM), so both follow one rule.
 */
export function checkSenderDomain(key: ApiKey, address: string): boolean {
  const allowed = domainAllowed(domainOf(address), key.allowedDomains);
  if (!allowed && (key.senderPolicy !== 'rewrite' || !key.defaultFrom)) {
    fail(
      'forbidden',
      `This API key may not send from the domain ${domainOf(address)}; allowed: ${key.allowedDomains.join(', ') || 'none'}.`,
    );
  }
  return allowed;
}

/**
 * A display name may show an address of the key's own domains, or the mailbox's own address or
 * bare `@domain` (a Reply-To named after itself is the truth, and a rewrite drops it from the name
 * anyway).
 */
function spoofingErrors(key: ApiKey, path: string, mailbox: Mailbox): FieldError[] {
  if (!mailbox.name) return [];
  const own = mailbox.address.toLowerCase();
  const ownDomain = `@${domainOf(own)}`;
  const foreign = addressesShownIn(mailbox.name)
    .filter(
      (shown) =>
        shown.address.toLowerCase() !== own &&
        shown.address.toLowerCase() !== ownDomain &&
        !domainAllowed(shown.domain, key.allowedDomains),
    )
    .map((shown) => shown.domain);
  if (foreign.length === 0) return [];
  return [
    {
      path,
      message: `display name must not show an address outside this key’s domains (${[...new Set(foreign)].join(', ')}); allowed: ${key.allowedDomains.join(', ') || 'none'}`,
    },
  ];
}

/**
 * `Ana via Baton`: the original name without the addresses it shows (and the brackets and
 * separators left around them), or the original local part when nothing else is left. Cut again
 * until nothing shows: the pieces around a cut-out address can join into a new one
 * (`support@ana@legacy.example paypal.com` would read `support@ paypal.com`). Each round removes
 * at least one at sign, so this ends.
 */
function rewrittenName(original: Mailbox): string {
  let name = original.name ?? '';
  for (let shown = addressesShownIn(name); shown.length > 0; shown = addressesShownIn(name)) {
    for (const { start, end } of shown.reverse()) name = name.slice(0, start) + name.slice(end);
    name = name
      .replace(/\(\s*\)|\[\s*\]|<\s*>|\{\s*\}/g, ' ')
      .replace(/\s+/g, ' ')
      .replace(/^[\s\-–—:|,;/]+|[\s\-–—:|,;/]+$/g, '');
  }
  const base =
    name.trim() === '' ? original.address.slice(0, original.address.lastIndexOf('@')) : name.trim();
  return `${base} via Baton`;
}

/** How a mailbox reads in a header and in the status API: `Name <a@b>` or `a@b`. */
export function formatMailbox(m: Mailbox): string {
  if (!m.name) return m.address;
  const needsQuotes = /[()<>[\]:;@\\,."]/.test(m.name);
  return needsQuotes ? `"${m.name.replace(/(["\\])/g, '\\$1')}" <${m.address}>` : `${m.name} <${m.address}>`;
}
