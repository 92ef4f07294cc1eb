import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/paths.js';
import { freePort } from '../support/ports.js';
import { startProcess, type TestProcess } from '../support/processes.js';
import { createWorld, type World } from '../support/world.js';
import {
  effectiveInstruction,
  execForm,
  parseDockerfile,
  stageChain,
  stageEnv,
} from './support/dockerfile.js';

/**
 * The image layout without Docker: each target's runtime filesystem is assembled in a temp folder from
 * the Dockerfile's own `COPY --from=build` lines (dist/, package.json, the gateway's views and public
 * files), with only the production dependencies visible (what `npm prune --omit=dev` keeps). Then the
 * image's CMD and environment run against the machine's PostgreSQL and Redis, and the Dockerfile's
 * HEALTHCHECK command must pass. This catches a missing COPY, a runtime import of a dev dependency, or
 * an app that looks for files the image does not have. It needs `npm run build` (npm test runs it first).
 */

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const built = existsSync(join(ROOT, 'dist', 'apps', 'gateway', 'src', 'main.js'));

/** Packages `npm prune --omit=dev` keeps at the top of node_modules (their own trees come along). */
function productionPackages(): string[] {
  const result = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const top = join(ROOT, 'node_modules');
  return [
    ...new Set(
      result.stdout
        .split('\n')
        .filter((line) => line.startsWith(`${top}/`))
        .map((line) => relative(top, line))
        .filter((rel) => !rel.includes('/node_modules/'))
        .map((rel) => (rel.startsWith('@') ? rel.split('/').slice(0, 2).join('/') : rel.split('/')[0]!)),
    ),
  ].sort();
}

/** Lays out /app of a target as the Dockerfile builds it: sources are the repository's built files. */
function stageImage(target: string, packages: string[]): string {
  const app = mkdtempSync(join(tmpdir(), `tess-image-${target}-`));
  const copies = stageChain(dockerfile, target)
    .reverse()
    .flatMap((s) => s.instructions.filter((i) => i.keyword === 'COPY' && i.args.startsWith('--from=build')));
  for (const copy of copies) {
    const [source, destination] = copy.args.split(/\s+/).slice(1);
    const from = join(ROOT, relative('/app', source!));
    const to = join(app, destination!);
    if (source === '/app/node_modules') {
      for (const name of packages) {
        mkdirSync(dirname(join(to, name)), { recursive: true });
        symlinkSync(join(from, name), join(to, name));
      }
    } else {
      cpSync(from, to, { recursive: true });
    }
  }
  return app;
}

function start(name: string, app: string, command: string[], env: Record<string, string>): TestProcess {
  return startProcess(name, command[1]!, env, { cwd: app, args: command.slice(2), inherit: ['PATH'] });
}

async function stop(running: TestProcess | undefined): Promise<void> {
  await running?.stop(15_000);
}

/** Runs the image's HEALTHCHECK command (in /app, with the container's environment) until it passes. */
async function healthcheck(
  target: string,
  app: string,
  env: Record<string, string>,
  running: TestProcess,
): Promise<void> {
  const hc = effectiveInstruction(dockerfile, target, 'HEALTHCHECK')!;
  const [, ...args] = execForm(hc.slice(hc.indexOf('CMD') + 3).trim());
  const deadline = Date.now() + 45_000;
  for (;;) {
    const result = spawnSync(process.execPath, args, {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    if (result.status === 0) return;
    if (running.child.exitCode !== null || running.child.signalCode !== null || Date.now() > deadline) {
      throw new Error(`HEALTHCHECK of ${target} never passed; output:\n${running.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe.skipIf(!built)('image layout: each target runs from what the Dockerfile copies', () => {
  let testEnv: World;
  let packages: string[] = [];
  const stages: string[] = [];
  const processes: TestProcess[] = [];
  let containerEnv: Record<string, string> = {};

  beforeAll(async () => {
    packages = productionPackages();
    testEnv = await createWorld({ gateway: 'none', env: { MIGRATE_ON_START: 'false' } });
    containerEnv = {
      ...testEnv.env,
      NODE_ENV: 'production',
      SESSION_SECRET: 'image-layout-session-secret-0123456789-0123456789',
      // The container listens on 0.0.0.0; here, loopback only.
      HOST: '127.0.0.1',
      TEMP_DIR: join(testEnv.env.DATA_DIR!, 'tmp'),
    };
  }, 60_000);

  afterAll(async () => {
    for (const p of processes) await stop(p);
    for (const dir of stages) rmSync(dir, { recursive: true, force: true });
    await testEnv?.close();
  }, 60_000);

  it('production dependencies exclude the dev tooling', () => {
    expect(packages).toContain('@nestjs/core');
    expect(packages).not.toContain('vitest');
    expect(packages).not.toContain('@biomejs/biome');
  });

  it('gateway image: migrations, then the app serves /healthz, /readyz, pages and static files', async () => {
    const app = stageImage('gateway', packages);
    stages.push(app);
    expect(existsSync(join(app, 'apps', 'gateway', 'views'))).toBe(true);
    const port = await freePort();
    const env: Record<string, string> = {
      ...stageEnv(dockerfile, 'gateway'),
      ...containerEnv,
      PORT: String(port),
    };

    const migrate = spawnSync(process.execPath, ['dist/scripts/migrate.js', 'up'], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(migrate.status, `${migrate.stdout}\n${migrate.stderr}`).toBe(0);

    const command = execForm(effectiveInstruction(dockerfile, 'gateway', 'CMD')!);
    const gateway = start('gateway image', app, command, env);
    processes.push(gateway);
    await healthcheck('gateway', app, env, gateway);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/readyz`)).status, gateway.output()).toBe(200);
    const login = await fetch(`${base}/login`);
    expect(login.status, gateway.output()).toBe(200);
    expect(await login.text()).toContain('<form');
    expect((await fetch(`${base}/static/css/app.css`)).status).toBe(200);
    expect((await fetch(`${base}/assets/bootstrap/css/bootstrap.min.css`)).status).toBe(200);
    await stop(gateway);
    expect(gateway.child.exitCode ?? gateway.child.signalCode).not.toBeNull();
  }, 120_000);

  it('crypto-worker image (no views, the glibc tunables): /healthz and /readyz on WORKER_HEALTH_PORT', async () => {
    const app = stageImage('crypto-worker', packages);
    stages.push(app);
    expect(existsSync(join(app, 'apps'))).toBe(false);
    const port = await freePort();
    const env: Record<string, string> = {
      ...stageEnv(dockerfile, 'crypto-worker'),
      ...containerEnv,
      WORKER_HEALTH_PORT: String(port),
    };
    expect(env.GLIBC_TUNABLES).toBeTruthy();
    const command = execForm(effectiveInstruction(dockerfile, 'crypto-worker', 'CMD')!);
    const worker = start('crypto-worker image', app, command, env);
    processes.push(worker);
    await healthcheck('crypto-worker', app, env, worker);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status, worker.output()).toBe(200);
    // SIGTERM: a clean, prompt exit with no job running.
    const started = Date.now();
    await stop(worker);
    expect(worker.child.exitCode, worker.output()).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 120_000);
});
