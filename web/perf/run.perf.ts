// Entry for `npm run perf` (vitest runs the TypeScript; the work is in measure.ts).
import { expect, it } from 'vitest';
import { measure } from './measure';

it('web performance figures', async () => {
  const r = await measure();
  // the run measured something real (figures are printed, not asserted against targets)
  expect(r.bundle.totalGzip).toBeGreaterThan(0);
  expect(r.load.runs.length).toBeGreaterThan(0);
  expect(r.scroll.frames).toBeGreaterThan(0);
}, 180_000);
