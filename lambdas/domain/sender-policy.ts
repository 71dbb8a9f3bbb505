import { domainOf, type Mailbox } from './address.ts';
import type { ApiKey } from './api-key.ts';
import type { OutgoingMessage } from './message.ts';
import { fail } from './problem.ts';

/** True when `domain` is one of `allowed` or a subdomain of one (SES verifies subdomains with the parent). */
export function domainAllowed(domain: string, allowed: readonly string[]): boolean {
  const d = domain.toLowerCase();
  return allowed.some((a) => {
    const base = a.toLowerCase();
    return d === base || d.endsWith(`.${base}`);
  });
}

/**
 * Applies the key's sender policy (DESIGN §4). A From outside the key's domains is refused, or,
 * for keys whose policy is `rewrite`, replaced by the key's verified default address: the
 * original stays visible in the display name, in Reply-To (unless one was given) and in
 * X-Original-From, so legacy senders keep working without spoofing a domain SES cannot sign for.
 */
export function applySenderPolicy(key: ApiKey, message: OutgoingMessage): OutgoingMessage {
  if (domainAllowed(domainOf(message.from.address), key.allowedDomains)) return message;
  if (key.senderPolicy !== 'rewrite' || !key.defaultFrom) {
    fail(
      'forbidden',
      `This API key may not send from the domain ${domainOf(message.from.address)}; allowed: ${key.allowedDomains.join(', ') || 'none'}.`,
    );
  }
  const original = message.from;
  const from: Mailbox = { name: rewrittenName(original), address: key.defaultFrom };
  return {
    ...message,
    from,
    replyTo: message.replyTo.length > 0 ? message.replyTo : [original],
    originalFrom: original,
  };
}

function rewrittenName(original: Mailbox): string {
  return original.name ? `${original.name} (${original.address}) via Baton` : `${original.address} via Baton`;
}

/** How a mailbox reads in a header and in the status API: `Name <a@b>` or `a@b`. */
export function formatMailbox(m: Mailbox): string {
  if (!m.name) return m.address;
  const needsQuotes = /[()<>[\]:;@\\,."]/.test(m.name);
  return needsQuotes ? `"${m.name.replace(/(["\\])/g, '\\$1')}" <${m.address}>` : `${m.name} <${m.address}>`;
}
