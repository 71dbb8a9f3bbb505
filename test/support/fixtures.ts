/**
 * The shared, read-only sample corpus (SES notifications, address and header-injection cases).
 * It lives next to the repository (`../shared/fixtures`), not in it; BATON_FIXTURES_DIR points
 * elsewhere when needed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export const FIXTURES_DIR = process.env.BATON_FIXTURES_DIR ?? resolve(REPO_ROOT, '../shared/fixtures');

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
