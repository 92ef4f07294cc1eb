// `npm start`: builds if needed, then runs one gateway and one crypto worker on the embedded defaults
// (local Postgres and Redis, local object directory and master key file under DATA_DIR).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuild } from './ensure-build.mjs';
import { GATEWAY_ENV, WORKER_ENV } from './runtime-env.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const pinnedNode = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).devDependencies.node;
if (process.versions.node !== pinnedNode) {
  // `npm start` puts the pinned Node first on PATH (node_modules/.bin/node); a bare `node scripts/start.mjs`
  // would otherwise run TESS on whatever Node the system has.
  console.error(
    `TESS runs on Node.js ${pinnedNode} (this is ${process.version}): start it with \`npm start\`.`,
  );
  process.exit(1);
}
console.log(`TESS on Node.js ${process.version}`);
process.chdir(root);
if (existsSync('.env')) process.loadEnvFile('.env');
ensureBuild();

const port = process.env.PORT || '3000';
const host = process.env.HOST || '127.0.0.1';
const url = process.env.PUBLIC_URL || `http://${host === '0.0.0.0' ? 'localhost' : host}:${port}`;
const children = new Set();
let stopping = false;

function run(name, script, extraEnv = {}) {
  const child = spawn(process.execPath, [join(root, script)], {
    stdio: 'inherit',
    env: { ...process.env, ...extraEnv },
  });
  children.add(child);
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (!stopping) {
      console.error(`${name} exited (${signal ?? code}); stopping TESS.`);
      stop(code || 1);
    } else if (children.size === 0) process.exit(process.exitCode ?? 0);
  });
  return child;
}

function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  for (const child of children) child.kill('SIGTERM');
  if (children.size === 0) process.exit(code);
}

async function waitUntilReady(deadline) {
  while (Date.now() < deadline && !stopping) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

run('gateway', 'dist/apps/gateway/src/main.js', GATEWAY_ENV);
if (await waitUntilReady(Date.now() + 60_000)) {
  run('crypto-worker', 'dist/apps/crypto-worker/src/main.js', WORKER_ENV);
  console.log(`\n  TESS is running: open ${url}\n  (Ctrl+C stops the gateway and the worker)\n`);
} else if (!stopping) {
  console.error('The gateway did not become ready within 60 s; see its messages above.');
  stop(1);
}
