import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_ENTRY, ROOT } from '../support/paths.js';
import { killAllProcesses, startProcess, startWorker } from '../support/processes.js';
import { createWorld, type World } from '../support/world.js';

/**
 * TESS runs on the Node.js 24 that package.json pins as the devDependency `node`: npm puts
 * node_modules/.bin first on PATH for every script, so `npm test`, `npm start` and `npm run bench` run on
 * it, and the processes they spawn inherit it through process.execPath. This fails when the test runner
 * or a gateway or worker it starts runs on any other Node (the system's Node 20, for example).
 */

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
const pinned = pkg.devDependencies.node!;
const STARTUP_VERSION = /Node\.js (v\d+\.\d+\.\d+)/;

describe('Node.js runtime', () => {
  let world: World;

  beforeAll(async () => {
    world = await createWorld({ gateway: 'none' });
  });

  afterAll(async () => {
    await killAllProcesses();
    await world?.close();
  });

  it('pins one exact Node 24 release, inside the engines range', () => {
    expect(pinned).toMatch(/^24\.\d+\.\d+$/);
    expect(pkg.engines.node).toBe(`>=${pinned} <25`);
  });

  it('runs the test runner on the pinned Node', () => {
    expect(process.versions.node).toBe(pinned);
  });

  it('starts the gateway and the crypto worker on the pinned Node, and they say so at startup', async () => {
    const gateway = startProcess('gateway', GATEWAY_ENTRY, { ...world.env, PORT: '0', LOG_LEVEL: 'info' });
    // The gateway applies the migrations; the worker starts on the migrated schema.
    await gateway.waitForOutput(/gateway listening on/, 60_000);
    const worker = await startWorker(world.env);
    await worker.waitForOutput(/crypto worker started/, 30_000);
    expect(gateway.output().match(STARTUP_VERSION)?.[1]).toBe(`v${pinned}`);
    expect(worker.output().match(STARTUP_VERSION)?.[1]).toBe(`v${pinned}`);
  }, 90_000);
});
