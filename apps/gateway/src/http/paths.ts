import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the folder holding package.json), from source or from dist alike. */
function findRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'apps'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`Cannot find the TESS root above ${start}`);
    dir = parent;
  }
  return dir;
}

const root = findRoot(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(join(root, 'package.json'));
/** Swagger UI as @nestjs/swagger resolves it: the version that package was built and tested with. */
const swaggerUiPackage = createRequire(require.resolve('@nestjs/swagger/package.json')).resolve(
  'swagger-ui-dist/package.json',
);

export const gatewayPaths = {
  root,
  views: join(root, 'apps/gateway/views'),
  partials: join(root, 'apps/gateway/views/partials'),
  public: join(root, 'apps/gateway/public'),
  bootstrap: join(dirname(require.resolve('bootstrap/package.json')), 'dist'),
  bootstrapIcons: join(dirname(require.resolve('bootstrap-icons/package.json')), 'font'),
  socketIoClient: join(dirname(require.resolve('socket.io/package.json')), 'client-dist'),
  /** tus-js-client's browser build (dist/tus.min.js: window.tus) for the dashboard's resumable uploads. */
  tusClient: join(dirname(require.resolve('tus-js-client/package.json')), 'dist'),
  /** hash-wasm's per-algorithm browser builds; the dashboard's hashing worker loads sha256.umd.min.js. */
  hashWasm: join(dirname(require.resolve('hash-wasm/package.json')), 'dist'),
  swaggerUi: dirname(swaggerUiPackage),
  /** The browser half of SimpleWebAuthn (its UMD bundle; the package exports no package.json). */
  simpleWebAuthn: join(dirname(dirname(require.resolve('@simplewebauthn/browser'))), 'dist/bundle'),
};
