import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/client.js';
import { ROOT } from '../support/paths.js';
import { freePort } from '../support/ports.js';
import { killAllProcesses, startProcess, type TestProcess, WORKER_READY } from '../support/processes.js';
import { createUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/** `npm start` (scripts/start.mjs) as a user runs it: supervision, the port check, Ctrl+C. */

const START = join(ROOT, 'scripts', 'start.mjs');
let world: World;
let env: Record<string, string>;
let base: string;
let tess: TestProcess;

const pids = (proc: TestProcess, name: string): number[] =>
  [...proc.output().matchAll(new RegExp(`^${name} started \\(pid (\\d+)\\)`, 'gm'))].map((m) => Number(m[1]));
const count = (text: string, pattern: RegExp): number => text.match(new RegExp(pattern, 'g'))?.length ?? 0;
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const healthy = async (): Promise<boolean> => {
  try {
    return (await fetch(`${base}/healthz`)).ok;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  world = await createWorld({ gateway: 'none' });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  world.urls.push(base);
  env = {
    ...world.env,
    PORT: String(port),
    WORKER_HEALTH_PORT: String(await freePort()),
    LOG_LEVEL: 'info',
  };
  tess = startProcess('npm start', START, env);
  await tess.waitForOutput(/TESS is running: open/, 90_000);
  await tess.waitForOutput(WORKER_READY, 30_000);
}, 150_000);

afterAll(async () => {
  await tess?.stop(15_000);
  await killAllProcesses();
  await world?.close();
});

describe('npm start', () => {
  it('restarts a killed worker with backoff while the gateway keeps serving; the new worker encrypts', async () => {
    const [first] = pids(tess, 'crypto-worker');
    process.kill(first!, 'SIGKILL');
    await tess.waitForOutput(/crypto-worker killed by SIGKILL \(pid \d+\); restarting it in 1 s\./, 10_000);
    expect(await healthy()).toBe(true);
    const second = await waitFor('a new worker', async () => pids(tess, 'crypto-worker')[1]);
    expect(second).not.toBe(first);
    await waitFor('the new worker consuming', async () => count(tess.output(), WORKER_READY) >= 2);
    expect(tess.exitStatus()).toBeUndefined();

    const user = await createUser(base, `start_${world.id}`);
    const form = new FormData();
    form.append('file', new Blob(['hello from a restarted worker']), 'hello.txt');
    const accepted = await fetch(`${base}/api/v1/uploads`, {
      method: 'POST',
      headers: user.auth,
      body: form,
    });
    expect(accepted.status).toBe(202);
    const [file] = ((await accepted.json()) as { files: { id: string }[] }).files;
    await waitFor('the upload stored', async () => {
      const res = await fetch(`${base}/api/v1/files/${file!.id}`, { headers: user.auth });
      return ((await res.json()) as { status: string }).status === 'stored';
    });
  }, 60_000);

  it('restarts a killed gateway the same way', async () => {
    const [first] = pids(tess, 'gateway');
    process.kill(first!, 'SIGKILL');
    await tess.waitForOutput(/gateway killed by SIGKILL \(pid \d+\); restarting it in 1 s\./, 10_000);
    await waitFor('a new gateway', async () => pids(tess, 'gateway')[1]);
    await waitFor('the new gateway serving', healthy, { timeoutMs: 30_000 });
    expect(tess.exitStatus()).toBeUndefined();
  }, 60_000);

  it('a second start on the same ports says which port is taken, by another TESS, and exits 1', async () => {
    const second = startProcess('second npm start', START, env);
    const status = await second.waitForExit(60_000);
    const output = second.output();
    expect(status.code).toBe(1);
    expect(output).toContain(`Port ${env.PORT} (PORT, the gateway) on 127.0.0.1 is already in use`);
    expect(output).toContain('it is another TESS (a TESS gateway answers /healthz)');
    expect(output).toMatch(/held by pid \d+: \S*node (?:--\S+ )*\S*dist\/apps\/gateway\/src\/main\.js/);
    expect(output).toContain(`Port ${env.WORKER_HEALTH_PORT} (WORKER_HEALTH_PORT`);
    expect(output).not.toContain('TESS is running: open');
    expect(output).not.toMatch(/\n\s+at /);
    expect(await healthy()).toBe(true);
  }, 70_000);

  it('SIGTERM stops the gateway and the worker and exits 0', async () => {
    const children = [...pids(tess, 'gateway'), ...pids(tess, 'crypto-worker')].filter(alive);
    expect(children).toHaveLength(2);
    tess.signal('SIGTERM');
    expect(await tess.waitForExit(30_000)).toEqual({ code: 0, signal: null });
    expect(children.filter(alive)).toEqual([]);
    expect(tess.output()).toMatch(/crypto-worker stopped \(exited with code 0\)/);
  }, 40_000);
});
