import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OBJECT_STORE, TESS_CONFIG, type TessConfig } from '#common';
import { HealthServer } from '../../apps/crypto-worker/src/health/health.server.js';
import { HealthController } from '../../apps/gateway/src/health/health.controller.js';
import { REDIS } from '../../apps/gateway/src/infra/redis.module.js';
import { ROOT } from '../support/paths.js';
import { parseDockerfile } from './support/dockerfile.js';
import { asArray, dig, isObj, K8S_DIR, type Obj, podOf, readYaml } from './support/manifests.js';

/**
 * The probes in the manifests, the compose file and the Dockerfile must hit routes the apps really
 * serve. Both health surfaces are started here with stand-in dependencies and asked over HTTP.
 */

function probePaths(): { gateway: Set<string>; worker: Set<string> } {
  const gateway = new Set<string>();
  const worker = new Set<string>();
  for (const file of ['gateway-deployment.yaml', 'crypto-worker-deployment.yaml']) {
    for (const obj of readYaml(join(K8S_DIR, 'base', file)).filter(isObj)) {
      for (const c of podOf(obj)!.containers) {
        for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
          const path = dig(c, probe, 'httpGet', 'path');
          if (typeof path === 'string') (c.name === 'gateway' ? gateway : worker).add(path);
        }
      }
    }
  }
  const compose = readYaml(join(ROOT, 'docker-compose.yml'))[0] as Obj;
  const url = (service: string) => {
    const test = asArray<string>(dig(compose, 'services', service, 'healthcheck', 'test')).join(' ');
    return new URL(/http:\/\/[^'"\s)]+/.exec(test)![0]).pathname;
  };
  gateway.add(url('gateway'));
  worker.add(url('crypto-worker'));
  const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  for (const stage of dockerfile.stages) {
    const hc = stage.instructions.find((i) => i.keyword === 'HEALTHCHECK');
    const path = hc && /\/[a-z]+z/.exec(hc.args)?.[0];
    if (path) (stage.name === 'gateway' ? gateway : worker).add(path);
  }
  return { gateway, worker };
}

const probes = probePaths();

/**
 * A stand-in for any dependency: every method answers (asynchronously) unless the dependency is marked
 * down. Built from the controller's constructor metadata, so a check added to /readyz needs no change here.
 */
function standIn(token: unknown, down: Set<unknown>): object {
  return new Proxy(
    {},
    {
      get: (_target, property) =>
        property === 'then'
          ? undefined
          : async () => {
              if (down.has(token)) throw new Error(`${String(property)}: connection refused`);
              return 'PONG';
            },
    },
  );
}

function constructorTokens(type: object): unknown[] {
  const designTypes: unknown[] = Reflect.getMetadata('design:paramtypes', type) ?? [];
  const injected: { index: number; param: unknown }[] = Reflect.getMetadata('self:paramtypes', type) ?? [];
  return designTypes.map((t, i) => injected.find((p) => p.index === i)?.param ?? t);
}

describe('gateway health routes (HealthController in a Nest app)', () => {
  let app: INestApplication;
  let base = '';
  const down = new Set<unknown>();
  const tokens = constructorTokens(HealthController);
  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      controllers: [HealthController],
      providers: tokens.map((token) => ({ provide: token as string, useValue: standIn(token, down) })),
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });
  afterAll(() => app?.close());

  it('the manifests, compose and Dockerfile probe /healthz and /readyz only', () => {
    expect([...probes.gateway].sort()).toEqual(['/healthz', '/readyz']);
  });

  it.each(['/healthz', '/readyz'])('%s answers 200 when every dependency is up', async (path) => {
    const response = await fetch(`${base}${path}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok' });
  });

  it('checks the database and Redis at least', () => {
    expect(tokens).toContain(DataSource);
    expect(tokens).toContain(REDIS);
  });

  it.each([
    ['the database', DataSource],
    ['Redis', REDIS],
  ])(
    '/readyz answers 503 when %s is down, /healthz stays 200 (no restart for a blip)',
    async (_name, token) => {
      down.add(token);
      try {
        expect((await fetch(`${base}/readyz`)).status).toBe(503);
        expect((await fetch(`${base}/healthz`)).status).toBe(200);
      } finally {
        down.delete(token);
      }
    },
  );
});

describe('crypto worker health routes (HealthServer on WORKER_HEALTH_PORT)', () => {
  let moduleRef: TestingModule;
  let base = '';
  const down = new Set<unknown>();
  const tokens = constructorTokens(HealthServer);
  beforeAll(async () => {
    const config = { worker: { healthPort: 0 }, http: { host: '127.0.0.1' } } as TessConfig;
    moduleRef = await Test.createTestingModule({
      providers: [
        HealthServer,
        ...tokens.map((token) => ({
          provide: token as string,
          useValue: token === TESS_CONFIG ? config : standIn(token, down),
        })),
      ],
    }).compile();
    await moduleRef.init();
    const server = (moduleRef.get(HealthServer) as unknown as { server: Server }).server;
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => moduleRef?.close());

  it('the manifests, compose and Dockerfile probe /healthz and /readyz only', () => {
    expect([...probes.worker].sort()).toEqual(['/healthz', '/readyz']);
  });

  it.each(['/healthz', '/readyz'])('%s answers 200 when every dependency is up', async (path) => {
    const response = await fetch(`${base}${path}`);
    expect(response.status).toBe(200);
  });

  it.each([
    ['the database', DataSource],
    ['the object store', OBJECT_STORE],
  ])('/readyz answers 503 when %s is down, /healthz stays 200', async (_name, token) => {
    expect(tokens).toContain(token);
    down.add(token);
    try {
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    } finally {
      down.delete(token);
    }
  });
});
