import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/** `tess-source` resolves the `#common` import to libs/common/src (TypeScript) instead of dist. */
export default defineConfig({
  resolve: { conditions: ['tess-source', ...defaultClientConditions] },
  ssr: { resolve: { conditions: ['tess-source', ...defaultServerConditions] } },
  test: {
    include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts', 'test/**/*.spec.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
