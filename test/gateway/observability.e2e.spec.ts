import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorld, type World } from '../support/world.js';

let world: World;
let app: NestExpressApplication;

beforeAll(async () => {
  world = await createWorld({ env: { LOG_LEVEL: 'error' } });
  app = world.app;
});

afterAll(async () => {
  await world?.close();
});

describe('observability', () => {
  it('exposes Prometheus metrics: HTTP latency by route pattern and queue depth by state', async () => {
    await request(app.getHttpServer()).get('/login').expect(200);
    await request(app.getHttpServer()).get('/api/v1/files/2b1c5d1e-4a8f-4c3a-9d3e-1f2a3b4c5d6e').expect(401);
    const res = await request(app.getHttpServer()).get('/metrics').expect(200);
    expect(res.text).toContain('tess_http_request_duration_seconds_bucket');
    expect(res.text).toMatch(/tess_http_request_duration_seconds_count\{[^}]*route="\/login"[^}]*\} 1/);
    expect(res.text).toMatch(/route="\/api\/v1\/files\/:id"/);
    expect(res.text).not.toContain('2b1c5d1e-4a8f');
    expect(res.text).toMatch(/tess_queue_jobs\{queue="crypto",state="waiting",app="gateway"\} 0/);
    expect(res.text).toMatch(/tess_queue_jobs\{queue="follow",state="active",app="gateway"\} 0/);
    expect(res.text).toContain('process_resident_memory_bytes');
  });

  it('gives every response a request id, keeping a well-formed one from the caller', async () => {
    const own = await request(app.getHttpServer())
      .get('/healthz')
      .set('X-Request-Id', 'client-chosen-id-123');
    expect(own.headers['x-request-id']).toBe('client-chosen-id-123');
    const generated = await request(app.getHttpServer())
      .get('/healthz')
      .set('X-Request-Id', 'bad id with spaces and ;');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
