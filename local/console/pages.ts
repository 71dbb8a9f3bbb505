import type { StatsView } from '../../lambdas/domain/reporting/stats.ts';
import type { MessageView } from '../../lambdas/domain/reporting/status.ts';
import type { SuppressionView } from '../../lambdas/domain/suppression/suppression.ts';
import type { DeliveryAttemptView, WebhookEndpointView } from '../../lambdas/domain/webhooks/operations.ts';
import { html, type Interpolation, SafeHtml } from './html.ts';
import type { OutboxCopy } from './outbox.ts';

/**
 * The console's pages, rendered on the server as whole documents that read without JavaScript.
 * Pure: the server hands in what it read. Elements marked `data-live` are what console.js swaps in
 * from a fresh copy of the page when the server's event stream says a message changed.
 */

type Section = 'messages' | 'suppressions' | 'webhooks';

function layout(title: string, active: Section, body: SafeHtml, attributes: Interpolation = ''): string {
  const link = (section: Section, href: string, label: string) =>
    html`<a href="${href}"${section === active ? html` aria-current="page"` : ''}>${label}</a>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Baton console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/static/console.css">
<script src="/console/static/console.js" defer></script>
</head>
<body${attributes}>
<header>
<strong>Baton</strong> <span class="local">local console</span>
<nav>${link('messages', '/console', 'Messages')} ${link('suppressions', '/console/suppressions', 'Suppressions')} ${link('webhooks', '/console/webhooks', 'Webhooks')}</nav>
<span class="live" id="live" hidden>live</span>
</header>
<main>
${body}
</main>
</body>
</html>
`.value;
}

const time = (iso: string) =>
  html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`;
const status = (s: string) =>
  html`<span class="status status-${s}" data-status="${s}">${s.replace('_', ' ')}</span>`;
const csrfField = (token: string) => html`<input type="hidden" name="csrf" value="${token}">`;
const messageHref = (id: string) => `/console/messages/${encodeURIComponent(id)}`;
const error = (text: string | undefined) => (text ? html`<p class="error" role="alert">${text}</p>` : '');

// --- messages -----------------------------------------------------------------------------------

export interface LandingInput {
  readonly messages: readonly MessageView[];
  /** The last week from GET /v1/stats; undefined when it could not be read. */
  readonly stats: StatsView | undefined;
  readonly csrfToken: string;
  /** Mailbox simulator local parts, one button each. */
  readonly mailboxes: readonly string[];
  readonly simulatorDomain: string;
  /** Shown above the list (the result of a test send). */
  readonly notice?: SafeHtml | string;
}

export function messagesTable(messages: readonly MessageView[]): SafeHtml {
  if (messages.length === 0)
    return html`<section id="messages" data-live><p class="empty">No messages yet. Send one with a button above, the API or SMTP.</p></section>`;
  const rows = messages.map(
    (m) => html`<tr data-id="${m.id}">
<td>${time(m.createdAt)}</td>
<td><a href="${messageHref(m.id)}">${m.subject || '(no subject)'}</a></td>
<td>${m.recipients.map((r, i) => html`${i > 0 ? ', ' : ''}<span class="recipient">${r.address}</span>`)}</td>
<td>${status(m.status)}</td>
</tr>`,
  );
  return html`<section id="messages" data-live>
<table class="messages">
<thead><tr><th>Time</th><th>Subject</th><th>Recipients</th><th>Status</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</section>`;
}

export function landingPage(input: LandingInput): string {
  const buttons = input.mailboxes.map(
    (m) => html`<button type="submit" name="mailbox" value="${m}">${m}@${input.simulatorDomain}</button> `,
  );
  const body = html`<h1>Messages</h1>
${input.notice ? html`<p class="notice" role="status">${input.notice}</p>` : ''}
<form method="post" action="/console/send-test" class="simulator">
${csrfField(input.csrfToken)}
<p>Send a test message through the API to the mailbox simulator:</p>
<p>${buttons}</p>
</form>
${messagesTable(input.messages)}
<h2>Last seven days</h2>
${input.stats ? statsChart(input.stats) : error('The statistics could not be read.')}`;
  return layout('Messages', 'messages', body);
}

export interface MessageInput {
  readonly view: MessageView;
  readonly outbox: OutboxCopy | undefined;
}

function detail(d: Readonly<Record<string, string | number | boolean | null>> | undefined): SafeHtml {
  if (!d) return html``;
  return html`<dl class="detail">${Object.entries(d).map(([k, v]) => html`<dt>${k}</dt><dd>${String(v)}</dd>`)}</dl>`;
}

export function messageSummary(view: MessageView): SafeHtml {
  return html`<section id="message" data-live>
<dl class="summary">
<dt>Status</dt><dd>${status(view.status)}</dd>
<dt>Id</dt><dd><code>${view.id}</code></dd>
<dt>From</dt><dd>${view.from}</dd>
<dt>Stream</dt><dd>${view.stream}</dd>
<dt>Created</dt><dd>${time(view.createdAt)}</dd>
</dl>
<h2>Recipients</h2>
<table class="recipients">
<thead><tr><th>Address</th><th>Status</th><th>Reason</th><th>Updated</th></tr></thead>
<tbody>
${view.recipients.map(
  (r) =>
    html`<tr><td>${r.address}</td><td>${status(r.status)}</td><td>${r.reason ?? ''}</td><td>${time(r.updatedAt)}</td></tr>`,
)}
</tbody>
</table>
<h2>Timeline</h2>
<ol class="timeline">
${view.events.map(
  (e) =>
    html`<li data-event="${e.type}">${time(e.at)} <strong>${e.type}</strong>${e.recipient ? html` <span class="recipient">${e.recipient}</span>` : ''}${e.sesMessageId ? html` <code>${e.sesMessageId}</code>` : ''}${detail(e.detail)}</li>`,
)}
</ol>
</section>`;
}

function outboxSection(id: string, copy: OutboxCopy | undefined): SafeHtml {
  if (!copy) {
    return html`<section id="outbox" data-live><h2>Outbox</h2>
<p class="empty">No copy in the outbox: the SES stand-in writes one when a recipient is delivered.</p></section>`;
  }
  const base = messageHref(id);
  return html`<section id="outbox" data-live><h2>Outbox</h2>
<p><code>${copy.file}</code>${copy.duplicates.length > 0 ? html` and ${copy.duplicates.length} duplicate(s): ${copy.duplicates.join(', ')}` : ''}
· <a href="${base}/raw">Raw source</a></p>
${
  copy.html === undefined
    ? ''
    : html`<h3>HTML</h3>
<iframe class="rendered" sandbox="" referrerpolicy="no-referrer" title="The message's HTML, without scripts" src="${base}/html"></iframe>`
}
${copy.text === undefined ? '' : html`<h3>Text</h3><pre class="text">${copy.text}</pre>`}
<h3>Attachments</h3>
${
  copy.attachments.length === 0
    ? html`<p class="empty">None.</p>`
    : html`<ul class="attachments">${copy.attachments.map(
        (a, i) =>
          html`<li><a href="${base}/attachments/${i}" download>${a.filename}</a> (${a.contentType}, ${a.size} bytes)</li>`,
      )}</ul>`
}
<h3>Headers</h3>
<table class="headers"><tbody>
${copy.headers.map((h) => html`<tr><th>${h.name}</th><td>${h.value}</td></tr>`)}
</tbody></table>
<details><summary>Raw source</summary><pre class="raw">${copy.raw}</pre></details>
</section>`;
}

export function messagePage(input: MessageInput): string {
  const { view } = input;
  const body = html`<p><a href="/console">← Messages</a></p>
<h1>${view.subject || '(no subject)'}</h1>
${messageSummary(view)}
${outboxSection(view.id, input.outbox)}`;
  return layout(view.subject || view.id, 'messages', body, html` data-message-id="${view.id}"`);
}

// --- suppressions -------------------------------------------------------------------------------

export interface SuppressionsInput {
  readonly items: readonly SuppressionView[];
  readonly csrfToken: string;
  readonly error?: string;
}

export function suppressionsPage(input: SuppressionsInput): string {
  const rows = input.items.map(
    (s) => html`<tr data-address="${s.address}">
<td>${s.address}</td><td>${s.reason}</td><td>${s.scope}</td><td>${s.detail ?? ''}</td><td>${time(s.createdAt)}</td>
<td>${s.expiresAt ? time(s.expiresAt) : 'never'}</td>
<td><form method="post" action="/console/suppressions/lift">${csrfField(input.csrfToken)}<input type="hidden" name="address" value="${s.address}"><button type="submit">Lift</button></form></td>
</tr>`,
  );
  const body = html`<h1>Suppressions</h1>
${error(input.error)}
<form method="post" action="/console/suppressions" class="add">
${csrfField(input.csrfToken)}
<label>Address <input type="email" name="address" required></label>
<label>Detail <input type="text" name="detail" maxlength="200"></label>
<button type="submit">Suppress</button>
</form>
<section id="suppressions" data-live>
${
  input.items.length === 0
    ? html`<p class="empty">No suppressions.</p>`
    : html`<table class="suppressions">
<thead><tr><th>Address</th><th>Reason</th><th>Scope</th><th>Detail</th><th>Since</th><th>Expires</th><th></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}
</section>`;
  return layout('Suppressions', 'suppressions', body);
}

// --- webhooks -----------------------------------------------------------------------------------

export interface WebhooksInput {
  readonly endpoints: ReadonlyArray<{
    readonly endpoint: WebhookEndpointView;
    readonly attempts: readonly DeliveryAttemptView[];
  }>;
  readonly error?: string;
}

export function webhooksPage(input: WebhooksInput): string {
  const sections = input.endpoints.map(
    ({ endpoint: e, attempts }) => html`<section class="endpoint" data-endpoint="${e.id}">
<h2><code>${e.url}</code></h2>
<p>${e.enabled ? 'enabled' : html`disabled (${e.disabledReason ?? 'by its owner'})`} · ${e.events.join(', ')}${e.description ? html` · ${e.description}` : ''}</p>
${
  attempts.length === 0
    ? html`<p class="empty">No attempts yet.</p>`
    : html`<table class="attempts">
<thead><tr><th>Time</th><th>Event</th><th>Attempt</th><th>Answer</th><th>Outcome</th><th>Response</th></tr></thead>
<tbody>
${attempts.map(
  (
    a,
  ) => html`<tr><td>${time(a.at)}</td><td>${a.type} <code>${a.eventId}</code></td><td>${a.attempt}${a.replay ? ' (replay)' : ''}</td>
<td>${a.statusCode ?? 'none'} in ${a.latencyMs} ms</td><td>${a.outcome}${a.nextAttemptAt ? html`, next ${time(a.nextAttemptAt)}` : ''}</td><td><code>${a.response}</code></td></tr>`,
)}
</tbody>
</table>`
}
</section>`,
  );
  const body = html`<h1>Webhooks</h1>
${error(input.error)}
<section id="webhooks" data-live>
${input.endpoints.length === 0 ? html`<p class="empty">No webhook endpoints. Register one with <code>POST /v1/webhooks</code>.</p>` : sections}
</section>`;
  return layout('Webhooks', 'webhooks', body);
}

// --- stats --------------------------------------------------------------------------------------

const SERIES = [
  { key: 'accepted', colour: '#6b7280' },
  { key: 'delivered', colour: '#16a34a' },
  { key: 'bounced', colour: '#dc2626' },
  { key: 'complained', colour: '#d97706' },
] as const;

/** Bars per day and series, drawn on the server: no chart library, no script. */
export function statsChart(stats: StatsView): SafeHtml {
  const plot = 160;
  const bar = 12;
  const group = SERIES.length * bar + 16;
  const left = 36;
  const width = left + stats.days.length * group + 8;
  const max = Math.max(1, ...stats.days.flatMap((d) => SERIES.map((s) => d[s.key])));
  const y = (n: number) => plot - (n / max) * plot + 10;
  const groups = stats.days.map((d, i) => {
    const x0 = left + i * group + 8;
    const bars = SERIES.map((s, j) => {
      const h = (d[s.key] / max) * plot;
      return html`<rect class="bar ${s.key}" x="${x0 + j * bar}" y="${y(d[s.key])}" width="${bar - 2}" height="${h}" fill="${s.colour}"><title>${d.date}: ${d[s.key]} ${s.key}</title></rect>`;
    });
    return html`<g>${bars}<text x="${x0 + (SERIES.length * bar) / 2}" y="${plot + 26}" text-anchor="middle" font-size="10">${d.date.slice(5)}</text></g>`;
  });
  const legend = SERIES.map(
    (s, j) =>
      html`<rect x="${left + j * 90}" y="${plot + 36}" width="10" height="10" fill="${s.colour}"></rect><text x="${left + j * 90 + 14}" y="${plot + 45}" font-size="11">${s.key} ${stats.totals[s.key]}</text>`,
  );
  return html`<figure class="stats">
<svg role="img" aria-label="Messages per day from ${stats.from} to ${stats.to}" width="${width}" height="${plot + 52}" viewBox="0 0 ${width} ${plot + 52}">
<line x1="${left}" y1="${plot + 10}" x2="${width}" y2="${plot + 10}" stroke="#999"></line>
<text x="${left - 4}" y="14" text-anchor="end" font-size="10">${max}</text>
<text x="${left - 4}" y="${plot + 10}" text-anchor="end" font-size="10">0</text>
${groups}
${legend}
</svg>
<figcaption>Bounce rate ${(stats.totals.bounceRate * 100).toFixed(2)} %, complaint rate ${(stats.totals.complaintRate * 100).toFixed(2)} % (GET /v1/stats)</figcaption>
</figure>`;
}

export function notFoundPage(what: string): string {
  return layout(
    'Not found',
    'messages',
    html`<h1>Not found</h1><p>${what}</p><p><a href="/console">← Messages</a></p>`,
  );
}

export { SafeHtml };
