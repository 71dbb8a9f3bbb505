import { describe, expect, it } from 'vitest';
import type { StatsView } from '../../../lambdas/domain/reporting/stats.ts';
import type { MessageView } from '../../../lambdas/domain/reporting/status.ts';
import { escapeHtml, html } from '../../../local/console/html.ts';
import type { OutboxCopy } from '../../../local/console/outbox.ts';
import {
  landingPage,
  messagePage,
  statsChart,
  suppressionsPage,
  webhooksPage,
} from '../../../local/console/pages.ts';

// The console shows what users wrote (subjects, addresses, headers, webhook answers): every page
// must print it as text, never as markup.

const HOSTILE = `"><script>alert(1)</script><img src=x onerror=alert(2)>`;

const view = (over: Partial<MessageView> = {}): MessageView => ({
  id: 'msg_01TEST',
  status: 'delivered',
  stream: 'transactional',
  createdAt: '2026-12-07T02:00:00.000Z',
  from: 'app@example.com',
  subject: HOSTILE,
  recipients: [
    {
      address: `x${HOSTILE}@example.org`,
      status: 'delivered',
      reason: null,
      updatedAt: '2026-12-07T02:00:01Z',
    },
  ],
  events: [
    { type: 'accepted', at: '2026-12-07T02:00:00.000Z' },
    { type: 'delivered', at: '2026-12-07T02:00:01Z', detail: { smtpResponse: HOSTILE } },
  ],
  ...over,
});

const outbox = (over: Partial<OutboxCopy> = {}): OutboxCopy => ({
  file: 'msg_01TEST.eml',
  duplicates: [],
  raw: `Subject: ${HOSTILE}\r\n\r\nhi`,
  headers: [
    { name: 'Subject', value: HOSTILE },
    { name: `X-${HOSTILE}`, value: 'v' },
  ],
  html: '<p>Hello</p><script>parent.document.title="pwned"</script>',
  text: HOSTILE,
  attachments: [
    { filename: `${HOSTILE}.pdf`, contentType: 'application/pdf', size: 3, content: Buffer.from('pdf') },
  ],
  ...over,
});

const stats = (): StatsView => {
  const row = (n: number) => ({
    accepted: n,
    rejected: 0,
    suppressed: 0,
    sent: n,
    delivered: n,
    bounced: 0,
    complained: 0,
    failed: 0,
    bounceRate: 0,
    complaintRate: 0,
  });
  return {
    from: '2026-12-06',
    to: '2026-12-07',
    days: [
      { date: '2026-12-06', ...row(2) },
      { date: '2026-12-07', ...row(4) },
    ],
    totals: row(6),
  };
};

/** Script elements a page has, besides the console's own static file. */
const foreignScripts = (page: string): string[] =>
  [...page.matchAll(/<script\b[^>]*>/gi)].map((m) => m[0]).filter((tag) => !tag.includes('/console/static/'));

describe('console rendering', () => {
  it('escapes every character that could open markup or leave an attribute', () => {
    // Act
    const out = html`<a title="${`"'<>&\``}">${HOSTILE}</a>`.value;

    // Assess
    expect(out).toBe(`<a title="&quot;&#39;&lt;&gt;&amp;&#96;">${escapeHtml(HOSTILE)}</a>`);
    expect(escapeHtml('<')).toBe('&lt;');
  });

  it('lists a hostile subject and recipient as text on the landing page', () => {
    // Act
    const page = landingPage({
      messages: [view()],
      stats: stats(),
      csrfToken: 'tok',
      mailboxes: ['success'],
      simulatorDomain: 'simulator.amazonses.com',
    });

    // Assess
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).not.toContain('<img src=x');
    expect(foreignScripts(page)).toEqual([]);
  });

  it('prints a message’s headers, timeline details and attachment names as text, and frames its HTML sandboxed', () => {
    // Act
    const page = messagePage({ view: view(), outbox: outbox() });

    // Assess
    expect(page).not.toContain('<img src=x');
    expect(foreignScripts(page)).toEqual([]);
    expect(page).toContain(`X-${escapeHtml(HOSTILE)}`);
    expect(page).not.toContain('pwned');
    const iframe = /<iframe\b[^>]*>/.exec(page)?.[0] ?? '';
    expect(iframe).toContain('sandbox=""');
    expect(iframe).toContain('src="/console/messages/msg_01TEST/html"');
    expect(iframe).not.toContain('srcdoc');
  });

  it('says so when the outbox has no copy of the message', () => {
    // Act
    const page = messagePage({ view: view({ status: 'bounced' }), outbox: undefined });

    // Assess
    expect(page).toContain('No copy in the outbox');
    expect(page).not.toContain('<iframe');
  });

  it('puts the CSRF token in every form that changes state', () => {
    // Act
    const pages = [
      landingPage({
        messages: [],
        stats: undefined,
        csrfToken: 'tok"1',
        mailboxes: ['success', 'bounce'],
        simulatorDomain: 'simulator.amazonses.com',
      }),
      suppressionsPage({
        items: [
          {
            address: 'a@example.org',
            reason: 'manual',
            detail: HOSTILE,
            source: null,
            createdAt: '2026-12-07T02:00:00Z',
            expiresAt: null,
            scope: 'tenant',
          },
        ],
        csrfToken: 'tok"1',
      }),
    ];

    // Assess
    for (const page of pages) {
      const forms = [...page.matchAll(/<form\b[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/g)];
      expect(forms.length).toBeGreaterThan(0);
      for (const form of forms) expect(form[1]).toContain('name="csrf" value="tok&quot;1"');
    }
    expect(pages[1]).not.toContain('<img src=x');
  });

  it('prints a webhook endpoint’s URL and its attempts’ answers as text', () => {
    // Act
    const page = webhooksPage({
      endpoints: [
        {
          endpoint: {
            id: 'wh_1',
            url: `http://127.0.0.1:9/${HOSTILE}`,
            events: ['message.delivered'],
            description: HOSTILE,
            enabled: true,
            disabledReason: null,
            createdAt: '2026-12-07T02:00:00Z',
            updatedAt: '2026-12-07T02:00:00Z',
            previousSecretExpiresAt: null,
          },
          attempts: [
            {
              endpointId: 'wh_1',
              eventId: 'evt_1',
              type: 'message.delivered',
              attempt: 1,
              at: '2026-12-07T02:00:00Z',
              statusCode: 500,
              latencyMs: 3,
              response: HOSTILE,
              outcome: 'retry',
            },
          ],
        },
      ],
    });

    // Assess
    expect(page).not.toContain('<img src=x');
    expect(foreignScripts(page)).toEqual([]);
    expect(page).toContain('retry');
  });

  it('draws one bar per day and series, the tallest day full height', () => {
    // Act
    const svg = statsChart(stats()).value;

    // Assess
    const bars = [...svg.matchAll(/<rect class="bar ([a-z]+)"[^>]*height="([\d.]+)"/g)];
    expect(bars.map((b) => b[1])).toEqual([
      'accepted',
      'delivered',
      'bounced',
      'complained',
      'accepted',
      'delivered',
      'bounced',
      'complained',
    ]);
    const heights = bars.map((b) => Number(b[2]));
    expect(heights[4]).toBe(Math.max(...heights));
    expect(heights[0]).toBeCloseTo((heights[4] ?? 0) / 2, 5);
    expect(svg).toContain('role="img"');
  });
});
