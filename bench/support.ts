/** What the benches share: the 10 KB message they measure with, and the median. */

const paragraph = 'Thank you for your order. Your items will ship within two business days. ';

/** A POST /v1/messages body of about 10 KB: 5 KB of text, 5 KB of table-laid-out HTML. */
export const TEN_KB_MESSAGE = {
  from: 'Shop <orders@example.com>',
  to: ['ana@example.org'],
  subject: 'Your receipt #12345',
  text: paragraph.repeat(Math.ceil(5_000 / paragraph.length)).slice(0, 5_000),
  html: `<html><body><table width="600"><tr><td style="font-family:Arial">${`<p>${paragraph}</p>`.repeat(70)}</td></tr></table></body></html>`.slice(
    0,
    5_200,
  ),
  tags: { campaign: 'receipts' },
  headers: { 'X-Order-Id': '12345' },
} as const;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
