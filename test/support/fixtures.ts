/**
 * The shared, read-only sample corpus (SES notifications, address and header-injection cases):
 * a verbatim copy of the team's `shared/fixtures` in `test/fixtures/shared` (SOURCES.md there
 * says where each file came from), so a clone tests without its surroundings. Never edit it;
 * `test/unit/fixtures-copy.test.ts` checks the copy against the original when that is present.
 * BATON_FIXTURES_DIR points elsewhere when needed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export const FIXTURES_DIR = process.env.BATON_FIXTURES_DIR ?? resolve(REPO_ROOT, 'test/fixtures/shared');

/** The team's original, next to the repository on a developer machine. */
export const ORIGINAL_FIXTURES_DIR = resolve(REPO_ROOT, '../shared/fixtures');

/** A fixture file's text, exactly as stored. */
export function fixtureText(relativePath: string): string {
  return readFileSync(join(FIXTURES_DIR, relativePath), 'utf8');
}

export function fixtureJson<T>(relativePath: string): T {
  return JSON.parse(fixtureText(relativePath)) as T;
}

/** The file names in a fixture folder, sorted. */
export function fixtureFiles(folder: string): string[] {
  return readdirSync(join(FIXTURES_DIR, folder)).sort();
}
