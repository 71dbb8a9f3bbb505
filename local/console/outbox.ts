import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { MESSAGE_ID } from '../../lambdas/domain/message.ts';

/** What the SES stand-in wrote for one message, parsed for the console. */
export interface OutboxCopy {
  readonly file: string;
  /** Further copies (`<id>.dup-<ses id>.eml`): a second SendEmail of the same message. */
  readonly duplicates: readonly string[];
  readonly raw: string;
  /** Unfolded header lines, in order, as sent. */
  readonly headers: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  /** The HTML part with `cid:` images turned into data: URLs (mailparser's default). */
  readonly html: string | undefined;
  readonly text: string | undefined;
  readonly attachments: ReadonlyArray<{
    readonly filename: string;
    readonly contentType: string;
    readonly size: number;
    readonly content: Buffer;
  }>;
}

/**
 * The outbox copy of `id`, or undefined when there is none (nothing delivered yet, or never: a
 * bounce). The id is checked against Baton's id format before it names a file, so no request can
 * read outside the folder.
 */
export async function readOutbox(outboxDir: string, id: string): Promise<OutboxCopy | undefined> {
  if (!MESSAGE_ID.test(id)) return undefined;
  let raw: Buffer;
  try {
    raw = await readFile(join(outboxDir, `${id}.eml`));
  } catch {
    return undefined;
  }
  const duplicates = (await readdir(outboxDir)).filter((f) => f.startsWith(`${id}.dup-`)).sort();
  const parsed = await simpleParser(raw);
  return {
    file: `${id}.eml`,
    duplicates,
    raw: raw.toString('utf8'),
    headers: parsed.headerLines.map(({ line }) => {
      const colon = line.indexOf(':');
      return {
        name: colon < 0 ? line : line.slice(0, colon),
        value:
          colon < 0
            ? ''
            : line
                .slice(colon + 1)
                .replace(/\r?\n[ \t]+/g, ' ')
                .trim(),
      };
    }),
    html: parsed.html === false ? undefined : parsed.html,
    text: parsed.text,
    // Inline images too: they are in the HTML as data: URLs, and downloadable here.
    attachments: parsed.attachments.map((a, i) => ({
      filename: a.filename ?? `attachment-${i + 1}`,
      contentType: a.contentType,
      size: a.size,
      content: a.content,
    })),
  };
}
