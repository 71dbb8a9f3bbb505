import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES_DIR, ORIGINAL_FIXTURES_DIR } from '../support/fixtures.ts';

function files(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(root, path));
    }
  };
  walk(root);
  return out.sort();
}

describe('the fixture copy', () => {
  it.runIf(existsSync(ORIGINAL_FIXTURES_DIR))('is byte-for-byte the shared original', () => {
    // Prepare
    const original = files(ORIGINAL_FIXTURES_DIR);

    // Act
    const copy = files(FIXTURES_DIR);

    // Assess
    expect(copy).toEqual(original);
    for (const file of original) {
      expect(
        readFileSync(join(FIXTURES_DIR, file)).equals(readFileSync(join(ORIGINAL_FIXTURES_DIR, file))),
      ).toBe(true);
    }
  });

  it('holds the SES samples and both corpora', () => {
    expect(files(FIXTURES_DIR)).toEqual(
      expect.arrayContaining([
        'SOURCES.md',
        'addresses.json',
        'header-injection.json',
        'ses/ses-event_aws-doc_bounce.json',
      ]),
    );
  });
});
