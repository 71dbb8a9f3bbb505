import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvVar } from '../../lambdas/shared/names.ts';
import { type LocalBaton, type LocalOptions, startLocal } from '../../local/baton-local.ts';

export interface TestBaton extends LocalBaton {
  readonly dir: string;
  /** fetch against the local API with the development key (unless `auth: null`). */
  request(path: string, init?: RequestInit & { json?: unknown; auth?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

export const TEST_API_KEY = 'bt_e2etestkey01_abcdefghijklmnopqrstuvwxyz0123456789ABCD';

/** Local mode in this process, on free ports, with its state in a temporary folder. */
export async function startTestBaton(options: LocalOptions = {}): Promise<TestBaton> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-e2e-'));
  const baton = await startLocal({
    port: 0,
    stateDir: dir,
    apiKey: TEST_API_KEY,
    eventDelayMs: 20,
    // A key's suspension shows within a second instead of the deployed 30 s.
    functionEnvironment: { [EnvVar.keyCacheSeconds]: '1' },
    ...options,
  });
  return {
    ...baton,
    dir,
    async request(path, init = {}) {
      const { json, auth, ...rest } = init;
      const headers = new Headers(rest.headers);
      const key = auth === undefined ? baton.apiKey : auth;
      if (key !== null) headers.set('authorization', `Bearer ${key}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(`${baton.url}${path}`, {
        ...rest,
        headers,
        ...(json !== undefined ? { body: JSON.stringify(json), method: rest.method ?? 'POST' } : {}),
      });
    },
    async close() {
      await baton.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a value (not undefined) or the time is up. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
