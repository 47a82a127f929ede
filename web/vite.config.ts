import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const target = process.env.PARLEY_DEV_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [
    react(),
    {
      // dist/.gitkeep keeps the go:embed pattern valid before the first build: restore it after emptying dist
      name: 'keep-gitkeep',
      closeBundle() {
        writeFileSync(resolve(import.meta.dirname, 'dist/.gitkeep'), '');
      },
    },
  ],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, target: 'es2022' },
  server: { proxy: { '/api': { target, ws: true }, '/webhooks': { target } } },
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.{ts,tsx}'],
  },
});
