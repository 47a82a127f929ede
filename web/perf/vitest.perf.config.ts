import { defineConfig } from 'vitest/config';

// `npm run perf`: the web performance figures (perf/measure.ts) against PARLEY_E2E_URL.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['perf/**/*.perf.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    disableConsoleIntercept: true,
  },
});
