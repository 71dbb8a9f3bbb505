import { defineConfig } from 'vitest/config';

// Four tiers (STYLE.md): unit is pure and fast; infra synthesizes the stack; integration and e2e
// start emulators on 127.0.0.1. `npm test` runs them all; `npm run test:<tier>` runs one.
export default defineConfig({
  test: {
    setupFiles: ['test/setup/offline.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          // The short fault soak runs with the end-to-end tests: it starts local mode too.
          include: ['test/e2e/**/*.test.ts', 'test/soak/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
