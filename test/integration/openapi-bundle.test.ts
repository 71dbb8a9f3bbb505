import '../support/quiet-powertools.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import type { ApiDeps, createApi as CreateApi } from '../../lambdas/api/app.ts';
import { Route } from '../../lambdas/shared/names.ts';
import { ESM_REQUIRE_BANNER } from '../../lib/constructs/baton-function.ts';
import { apiHarness } from '../support/harness.ts';
import { httpEvent } from '../support/http-events.ts';

// Issue 15: GET /openapi.json answers the same bytes and content type from the api function as
// local mode runs it (the TypeScript source) and as it is deployed (bundled by esbuild with the
// options of lib/constructs/baton-function.ts): the JSON import of docs/openapi.json survives it.

const dir = mkdtempSync(join(tmpdir(), 'baton-openapi-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('GET /openapi.json from the bundled api function', () => {
  it('answers the bytes and content type the source answers', async () => {
    // Prepare
    const outfile = join(dir, 'app.mjs');
    await build({
      entryPoints: ['lambdas/api/app.ts'],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      mainFields: ['module', 'main'],
      banner: { js: ESM_REQUIRE_BANNER },
      minify: true,
      outfile,
      logLevel: 'silent',
    });
    const bundled = (await import(pathToFileURL(outfile).href)) as { createApi: typeof CreateApi };
    const { api: source } = apiHarness();
    // The route reads no dependency: the document is served before any key is looked at.
    const deployed = bundled.createApi({} as ApiDeps);

    // Act
    const [fromSource, fromBundle] = await Promise.all([
      source(httpEvent(Route.openapi)),
      deployed(httpEvent(Route.openapi)),
    ]);

    // Assess
    expect(fromBundle.statusCode).toBe(200);
    expect(fromBundle.headers).toEqual(fromSource.headers);
    expect(fromBundle.body).toBe(fromSource.body);
    expect(JSON.parse(fromBundle.body ?? '')).toMatchObject({ openapi: '3.1.0' });
  }, 60_000);
});
