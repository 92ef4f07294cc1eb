import { defaultClientConditions, defaultServerConditions } from 'vite';
import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Two tiers (`npm run test:unit` runs only the first, `vitest run` both):
 * - unit: needs no PostgreSQL, Redis, child process or browser. In-process loopback fakes (s3rver, the
 *   Secrets Manager fake) count as unit: they need nothing installed or running and start in milliseconds.
 * - integration: everything else, among them every full-stack `*.e2e.spec.ts` (built on test/support/world.ts),
 *   the deployment checks (they run tools and the built images) and specs that start node processes.
 */
const UNIT_UNDER_TEST = [
  'test/config/**/*.spec.ts',
  'test/support/**/*.spec.ts',
  'test/deploy/health-routes.spec.ts',
];
/** Colocated specs that start child processes. */
const COLOCATED_INTEGRATION = [
  '**/*.e2e.spec.ts',
  'libs/common/src/keys/local-file.master-key-source.spec.ts',
];

/** `tess-source` resolves the `#common` import to libs/common/src (TypeScript) instead of dist. */
export default defineConfig({
  resolve: { conditions: ['tess-source', ...defaultClientConditions] },
  // Node never uses the `module` condition; without this filter Vite loads the AWS SDK's dist-es build.
  ssr: { resolve: { conditions: ['tess-source', ...defaultServerConditions.filter((c) => c !== 'module')] } },
  test: {
    environment: 'node',
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts', 'scripts/**/*.spec.ts', ...UNIT_UNDER_TEST],
          exclude: [...configDefaults.exclude, ...COLOCATED_INTEGRATION],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.spec.ts', ...COLOCATED_INTEGRATION],
          exclude: [...configDefaults.exclude, ...UNIT_UNDER_TEST],
        },
      },
    ],
  },
});
