import { describe, expect, it } from 'vitest';
import type { MessageView } from '../../../lambdas/domain/reporting/status.ts';
import { html } from '../../../local/console/html.ts';
import { messagePage, suppressionsPage, webhooksPage } from '../../../local/console/pages.ts';

// Escaping keeps markup out, but Unicode's bidirectional controls pass it untouched: an override
// (U+202E) in a subject or an attachment's name makes `invoice‮fdp.exe` read `invoiceexe.pdf`, and
// it reorders the text after it in the same cell. Shown as text, they must be visible.

const RLO = '\u202E';
const CONTROLS = /[\u202A-\u202E\u2066-\u2069]/;

const view = (subject: string): MessageView => ({
  id: 'msg_01BIDI',
  status: 'delivered',
  stream: 'transactional',
  createdAt: '2026-12-07T02:00:00.000Z',
  from: `app${RLO}@example.com`,
  subject,
  recipients: [
    { address: 'ana@example.org', status: 'delivered', reason: null, updatedAt: '2026-12-07T02:00:01Z' },
  ],
  events: [{ type: 'delivered', at: '2026-12-07T02:00:01Z', detail: { smtpResponse: `250 ${RLO}ko` } }],
});

describe('console attack: bidirectional controls in user text', () => {
  it('shows overrides and isolates in a subject, header, attachment name and detail as visible marks', () => {
    // Act
    const page = messagePage({
      view: view(`Invoice ${RLO}fdp.exe`),
      outbox: {
        file: 'msg_01BIDI.eml',
        duplicates: [],
        raw: `Subject: x${RLO}y\r\n\r\nhi`,
        headers: [{ name: 'X-Note', value: `a\u2067b\u2069c` }],
        html: undefined,
        text: `t${RLO}t`,
        attachments: [
          {
            filename: `report${RLO}fdp.exe`,
            contentType: `application/${RLO}pdf`,
            size: 1,
            content: Buffer.from('x'),
          },
        ],
      },
    });

    // Assess
    expect(page).not.toMatch(CONTROLS);
    expect(page).toContain('Invoice &lt;U+202E&gt;fdp.exe');
    expect(page).toContain('report&lt;U+202E&gt;fdp.exe');
  });

  it('does so on the suppression and webhook pages too', () => {
    // Act
    const suppressions = suppressionsPage({
      items: [
        {
          address: 'ana@example.org',
          reason: 'manual',
          detail: `note ${RLO}x`,
          source: null,
          createdAt: '2026-12-07T02:00:00.000Z',
          expiresAt: null,
          scope: 'tenant',
        },
      ],
      csrfToken: 'tok',
    });
    const webhooks = webhooksPage({
      endpoints: [
        {
          endpoint: {
            id: 'wh_1',
            url: `https://example.org/${RLO}x`,
            events: ['message.delivered'],
            description: `desc ${RLO}x`,
            enabled: true,
            disabledReason: null,
            createdAt: '2026-12-07T02:00:00.000Z',
            updatedAt: '2026-12-07T02:00:00.000Z',
            previousSecretExpiresAt: null,
          } as never,
          attempts: [],
        },
      ],
    });

    // Assess
    expect(suppressions).not.toMatch(CONTROLS);
    expect(webhooks).not.toMatch(CONTROLS);
  });

  it('keeps a value inside an attribute as it is, so a form posts back exactly what it showed', () => {
    // Act
    const out = html`<input type="hidden" name="address" value="${`a${RLO}b`}"><td>${`a${RLO}b`}</td>`.value;

    // Assess
    expect(out).toBe(`<input type="hidden" name="address" value="a${RLO}b"><td>a&lt;U+202E&gt;b</td>`);
  });
});
