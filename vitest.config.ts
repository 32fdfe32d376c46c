import { defineConfig } from 'vitest/config';

// The whole suite runs twice, once per noise implementation (MEZO_NOISE), so every test that touches noise
// proves both the native addon and the TypeScript fallback. Tests that compare the two explicitly
// (native-*.test.ts) run once. The JSON report feeds the summary line of .ci/run.
export default defineConfig({
  test: {
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'native', include: ['test/**/*.test.ts'], env: { MEZO_NOISE: 'native', MEZO_LOG_LEVEL: 'silent' } },
      },
      {
        extends: true,
        test: {
          name: 'js',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/native-*.test.ts', '**/node_modules/**'],
          env: { MEZO_NOISE: 'js', MEZO_LOG_LEVEL: 'silent' },
        },
      },
    ],
  },
});
