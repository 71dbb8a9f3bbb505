import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/paths.ts';

// The README is a newcomer's page and docs/ holds the reference (STYLE.md): the README stays short
// enough to read in five minutes, starts with the two commands, and no link of either leads nowhere.

const README = join(REPO_ROOT, 'README.md');
const DOCS = join(REPO_ROOT, 'docs');
const PAGES = [
  README,
  ...readdirSync(DOCS)
    .filter((n) => n.endsWith('.md'))
    .map((n) => join(DOCS, n)),
];

/** The page without fenced code blocks and inline code, where `[x](y)` and `# y` are not markdown. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading ids (github-slugger): lower case, punctuation dropped, spaces to hyphens. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  const withoutFences = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const [, text = ''] of withoutFences.matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const rendered = text.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*]/g, '');
    const slug = rendered
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replaceAll(' ', '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  for (const [, id = ''] of markdown.matchAll(/<a (?:name|id)="([^"]+)"/g)) anchors.add(id);
  return anchors;
}

/** Every relative link of a page, as written: `[text](target)`, images included. */
function relativeLinks(markdown: string): string[] {
  const targets = [...prose(markdown).matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)].map(([, t = '']) => t);
  return targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

/** What is wrong with one link of `page`, or undefined when it leads somewhere. */
function brokenLink(page: string, link: string): string | undefined {
  const [path = '', fragment] = link.split('#', 2);
  const target = path === '' ? page : join(dirname(page), decodeURIComponent(path));
  const where = `${relative(REPO_ROOT, page)}: ${link}`;
  if (!existsSync(target)) return `${where} (no such file)`;
  if (fragment === undefined || statSync(target).isDirectory()) return undefined;
  return anchorsOf(readFileSync(target, 'utf8')).has(fragment) ? undefined : `${where} (no such heading)`;
}

describe('README.md', () => {
  it('is at most 15,000 bytes', () => {
    // Act
    const size = statSync(README).size;

    // Assess
    expect(size).toBeLessThanOrEqual(15_000);
  });

  it('shows npm start and npm test in its first 40 lines', () => {
    // Act
    const top = readFileSync(README, 'utf8').split('\n').slice(0, 40).join('\n');

    // Assess
    expect(top).toMatch(/^npm start\b/m);
    expect(top).toMatch(/^npm test\b/m);
  });
});

describe('links of README.md and docs/*.md', () => {
  it('lead to files that exist, and to headings that exist when they name one', () => {
    // Act
    const broken = PAGES.flatMap((page) =>
      relativeLinks(readFileSync(page, 'utf8')).flatMap((link) => brokenLink(page, link) ?? []),
    );

    // Assess
    expect(broken).toEqual([]);
  });

  it('are found and checked: a missing file and a missing heading are reported', () => {
    // Prepare
    const page = join(DOCS, 'example.md');
    const markdown = [
      '# A page',
      '[ok](../README.md#try-it) [gone](nowhere.md) [no heading](../README.md#no-such-heading)',
      '[web](https://example.com) `[code](ignored.md)`',
      '```sh',
      '[in a block](ignored.md)',
      '```',
    ].join('\n');

    // Act
    const links = relativeLinks(markdown);
    const broken = links.flatMap((link) => brokenLink(page, link) ?? []);

    // Assess
    expect(links).toEqual(['../README.md#try-it', 'nowhere.md', '../README.md#no-such-heading']);
    expect(broken).toEqual([
      'docs/example.md: nowhere.md (no such file)',
      'docs/example.md: ../README.md#no-such-heading (no such heading)',
    ]);
  });

  it('name headings as GitHub does', () => {
    // Act
    const anchors = anchorsOf(
      [
        '## 9. SMTP front door (`smtp=true`)',
        '### Settings (CDK context, `-c key=value`)',
        '## Sending, in detail',
        '## Sending, in detail',
        '```',
        '# not a heading',
        '```',
      ].join('\n'),
    );

    // Assess
    expect([...anchors]).toEqual([
      '9-smtp-front-door-smtptrue',
      'settings-cdk-context--c-keyvalue',
      'sending-in-detail',
      'sending-in-detail-1',
    ]);
  });
});
