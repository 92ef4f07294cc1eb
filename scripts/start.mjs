// `npm start`: builds if needed, checks its ports, then runs and supervises one gateway and one crypto
// worker on the embedded defaults (local Postgres and Redis, local object directory and master key file
// under DATA_DIR). A child that exits is restarted with backoff; only Ctrl+C / SIGTERM stops TESS.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuild } from './ensure-build.mjs';
import { takenPorts } from './port-check.mjs';
import { GATEWAY_ENV, GATEWAY_NODE_ARGS, WORKER_ENV } from './runtime-env.mjs';

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

const port = Number(process.env.PORT || 3000);
const workerHealthPort = Number(process.env.WORKER_HEALTH_PORT || 3001);
const host = process.env.HOST || '127.0.0.1';
const url = process.env.PUBLIC_URL || `http://${host === '0.0.0.0' ? 'localhost' : host}:${port}`;

const taken = await takenPorts(host, [
  { name: 'the gateway', variable: 'PORT', port },
  { name: "the crypto worker's health server", variable: 'WORKER_HEALTH_PORT', port: workerHealthPort },
]);
if (taken.length) {
  console.error(`\nTESS cannot start:\n${taken.map((line) => `  ${line}`).join('\n')}`);
  console.error('Stop that process, or set PORT / WORKER_HEALTH_PORT (in .env or the environment).\n');
  process.exit(1);
}

/** Backoff between restarts: 1 s, doubling to 30 s; back to 1 s after a minute of uptime. */
const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 30_000;
const STABLE_AFTER_MS = 60_000;

let stopping = false;
const services = [];

/** The runtime environment's Node options followed by the operator's own, which then win on a conflict. */
function nodeOptions(extraEnv) {
  return [extraEnv.NODE_OPTIONS, process.env.NODE_OPTIONS].filter(Boolean).join(' ') || undefined;
}

/** One supervised child: restarted with backoff whenever it exits while TESS is not stopping. */
function supervise(name, script, extraEnv, { onExit, nodeArgs = [] } = {}) {
  const service = { name, child: undefined, timer: undefined, delay: FIRST_DELAY_MS };
  const start = () => {
    service.timer = undefined;
    const startedAt = Date.now();
    const child = spawn(process.execPath, [...nodeArgs, join(root, script)], {
      stdio: 'inherit',
      env: { ...process.env, ...extraEnv, NODE_OPTIONS: nodeOptions(extraEnv) },
    });
    service.child = child;
    console.log(`${name} started (pid ${child.pid})`);
    child.on('exit', (code, signal) => {
      service.child = undefined;
      const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
      if (stopping) {
        console.log(`${name} stopped (${how})`);
        finishIfDone();
        return;
      }
      if (onExit?.(code, signal) === false) return;
      if (Date.now() - startedAt >= STABLE_AFTER_MS) service.delay = FIRST_DELAY_MS;
      const delay = service.delay;
      service.delay = Math.min(delay * 2, MAX_DELAY_MS);
      console.error(`${name} ${how} (pid ${child.pid}); restarting it in ${delay / 1000} s.`);
      service.timer = setTimeout(start, delay);
    });
  };
  services.push(service);
  start();
  return service;
}

function finishIfDone() {
  if (services.every((s) => !s.child)) process.exit(process.exitCode ?? 0);
}

function stop(code) {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  for (const service of services) {
    clearTimeout(service.timer);
    // The worker drains its active jobs on SIGTERM; the gateway closes its server and connections.
    service.child?.kill('SIGTERM');
  }
  finishIfDone();
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

let gatewayReady = false;
supervise('gateway', 'dist/apps/gateway/src/main.js', GATEWAY_ENV, {
  nodeArgs: GATEWAY_NODE_ARGS,
  // Before it was ever ready, an exit is a setup problem (database, Redis, config) the gateway has
  // explained; restarting would only repeat the message.
  onExit: () => {
    if (gatewayReady) return true;
    stop(1);
    return false;
  },
});
if (await waitUntilReady(Date.now() + 60_000)) {
  gatewayReady = true;
  supervise('crypto-worker', 'dist/apps/crypto-worker/src/main.js', WORKER_ENV);
  console.log(`\n  TESS is running: open ${url}\n  (Ctrl+C stops the gateway and the worker)\n`);
} else if (!stopping) {
  console.error('The gateway did not become ready within 60 s; see its messages above.');
  stop(1);
}
