import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/** `tess-source` resolves the `#common` import to libs/common/src (TypeScript) instead of dist. */
export default defineConfig({
  resolve: { conditions: ['tess-source', ...defaultClientConditions] },
  // Node never uses the `module` condition; without this filter Vite loads the AWS SDK's dist-es build.
  ssr: { resolve: { conditions: ['tess-source', ...defaultServerConditions.filter((c) => c !== 'module')] } },
  test: {
    include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts', 'test/**/*.spec.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
