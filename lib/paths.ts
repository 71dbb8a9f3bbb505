import { resolve } from 'node:path';

/**
 * The repository root. Lambda entries are given relative to it, because that is also how local
 * mode finds them again in the synthesized template (`ENTRY_METADATA_KEY`).
 */
export const REPO_ROOT = resolve(import.meta.dirname, '..');
