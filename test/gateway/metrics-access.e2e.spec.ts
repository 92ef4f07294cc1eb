import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthServer } from '../../apps/crypto-worker/src/health/health.server.js';
import { MetricsListener } from '../../apps/gateway/src/metrics/metrics.module.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Issue 22: /metrics need not rely on the Ingress leaving it out. METRICS_TOKEN makes the gateway and
 * the worker require it as a bearer token; METRICS_PORT moves the gateway's /metrics to its own listener.
 */

const TOKEN = 'metrics-token-0123456789abcdef';
let world: World;

beforeAll(async () => {
  world = await createWorld({ workers: 'in-process', env: { METRICS_TOKEN: TOKEN } });
}, 60_000);

afterAll(async () => {
  await world?.close();
});

const workerBase = () => `http://127.0.0.1:${world.worker!.get(HealthServer).port()}`;

describe('METRICS_TOKEN', () => {
  it.each([
    ['gateway', () => world.base],
    ['worker', workerBase],
  ])('the %s answers /metrics only with Authorization: Bearer <METRICS_TOKEN>', async (_app, base) => {
    for (const auth of [
      undefined,
      'Bearer wrong-token-0123456789abcdef',
      TOKEN,
      `Basic ${TOKEN}`,
      `Bearer ${TOKEN}x`,
    ]) {
      const req = request(base()).get('/metrics');
      if (auth) req.set('Authorization', auth);
      const res = await req;
      expect(res.status, String(auth)).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="metrics"');
      expect(res.body).toEqual({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'Metrics need Authorization: Bearer <METRICS_TOKEN>.',
      });
    }
    const ok = await request(base()).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    expect(ok.text).toContain('process_resident_memory_bytes');
  });

  it('leaves the worker probes open', async () => {
    await request(workerBase()).get('/healthz').expect(200);
  });
});

describe('METRICS_PORT', () => {
  it('serves /metrics on its own listener only; the gateway port answers 404 for it', async () => {
    const { app, url } = await world.startGateway({ ...world.config, metrics: { token: null, port: 0 } });
    const port = app.get(MetricsListener).port();
    expect(port).toBeGreaterThan(0);
    const metrics = `http://127.0.0.1:${port}`;
    const res = await request(metrics).get('/metrics').expect(200);
    expect(res.text).toContain('tess_http_request_duration_seconds');
    await request(metrics).get('/login').expect(404);
    await request(metrics).get('/api/v1/files').expect(404);
    await request(url).get('/metrics').expect(404);
  });

  it('with METRICS_TOKEN too, the listener requires it', async () => {
    const { app } = await world.startGateway({ ...world.config, metrics: { token: TOKEN, port: 0 } });
    const metrics = `http://127.0.0.1:${app.get(MetricsListener).port()}`;
    await request(metrics).get('/metrics').expect(401);
    await request(metrics).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
  });
});
