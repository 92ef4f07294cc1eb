import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, for every test that reads repository files or starts built entry points. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Entry points built by `npm run build` (npm test runs it before the suite). */
export const GATEWAY_ENTRY = join(ROOT, 'dist', 'apps', 'gateway', 'src', 'main.js');
export const WORKER_ENTRY = join(ROOT, 'dist', 'apps', 'crypto-worker', 'src', 'main.js');
export const CLI_ENTRY = join(ROOT, 'dist', 'scripts', 'tess-cli.js');
export const AUDIT_VERIFY_ENTRY = join(ROOT, 'dist', 'scripts', 'audit-verify.js');
export const RECOVER_ENTRY = join(ROOT, 'dist', 'scripts', 'recover.js');
