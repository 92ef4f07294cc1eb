import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorld, type World } from '../support/world.js';

let world: World;
let app: NestExpressApplication;

beforeAll(async () => {
  world = await createWorld();
  app = world.app;
});

afterAll(async () => {
  await world?.close();
});

interface Operation {
  summary?: string;
  responses: Record<string, { description?: string }>;
  security?: unknown[];
}

describe('OpenAPI document', () => {
  it('documents every API endpoint with a summary and its error answers', async () => {
    const { body } = await request(app.getHttpServer()).get('/api/docs.json').expect(200);
    const paths = body.paths as Record<string, Record<string, Operation>>;
    const operations = Object.entries(paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, op })),
    );
    expect(operations.map((o) => o.key).sort()).toEqual(
      [
        'DELETE /api/v1/files/{id}',
        'DELETE /api/v1/tokens/{id}',
        'GET /api/v1/files',
        'GET /api/v1/files/{id}',
        'GET /api/v1/files/{id}/content',
        'GET /api/v1/jobs',
        'GET /api/v1/jobs/{id}',
        'GET /api/v1/tokens',
        'GET /api/v1/usage',
        'GET /healthz',
        'GET /readyz',
        'POST /api/v1/files/{id}/verify',
        'POST /api/v1/tokens',
        'POST /api/v1/uploads',
      ].sort(),
    );
    for (const { key, op } of operations) {
      expect(op.summary, key).toBeTruthy();
      if (key.includes('/api/v1/') && key !== 'POST /api/v1/tokens') {
        expect(Object.keys(op.responses), key).toEqual(expect.arrayContaining(['401']));
      }
    }
    expect(Object.keys(paths['/api/v1/uploads']!.post!.responses)).toEqual(
      expect.arrayContaining(['202', '400', '413', '415', '503', '507']),
    );
    expect(Object.keys(body.components.schemas)).toEqual(
      expect.arrayContaining(['ErrorDto', 'FileDto', 'JobDto', 'UploadAcceptedDto', 'TokenCreatedDto']),
    );
  });

  it('serves the interactive documentation page', async () => {
    const res = await request(app.getHttpServer()).get('/api/docs/').expect(200);
    expect(res.text).toContain('swagger');
  });
});
