import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILE_STATUSES } from '#common';
import {
  API_CLIENT_PATH,
  OPENAPI_PATH,
  renderApiClient,
  renderOpenApiDocument,
} from '../../scripts/openapi.js';
import { ROOT } from '../support/paths.js';
import { createWorld, type World } from '../support/world.js';

const run = promisify(execFile);
let world: World;
let app: NestExpressApplication;

beforeAll(async () => {
  world = await createWorld();
  app = world.app;
});

afterAll(async () => {
  await world?.close();
});

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  $ref?: string;
}

interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  parameters?: { name: string; in: string; schema?: Schema }[];
  responses: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> }>;
  security?: unknown[];
}

interface Document {
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; securitySchemes: Record<string, Record<string, string>> };
}

const operationsOf = (document: Document) =>
  Object.entries(document.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, op })),
  );

async function served(): Promise<Document> {
  return (await request(app.getHttpServer()).get('/api/docs.json').expect(200)).body as Document;
}

describe('OpenAPI document', () => {
  it('documents every API endpoint with a summary and its error answers', async () => {
    const body = await served();
    const paths = body.paths;
    const operations = operationsOf(body);
    expect(operations.map((o) => o.key).sort()).toEqual(
      [
        'DELETE /api/v1/files/{id}',
        'DELETE /api/v1/shares/{id}',
        'DELETE /api/v1/tokens/{id}',
        'GET /api/v1/files/{id}/shares',
        'GET /api/v1/shares',
        'POST /api/v1/files/{id}/shares',
        'GET /api/v1/files',
        'GET /api/v1/files/{id}',
        'GET /api/v1/files/{id}/content',
        'GET /api/v1/jobs',
        'GET /api/v1/jobs/{id}',
        'GET /api/v1/tokens',
        'GET /api/v1/usage',
        'GET /healthz',
        'GET /readyz',
        'POST /api/v1/account/password',
        'POST /api/v1/files/{id}/verify',
        'POST /api/v1/tokens',
        'POST /api/v1/uploads',
        'POST /api/v1/tus',
        'HEAD /api/v1/tus/{id}',
        'PATCH /api/v1/tus/{id}',
        'DELETE /api/v1/tus/{id}',
        'GET /api/v1/files/{id}/versions',
        'POST /api/v1/files/{id}/versions',
        'GET /api/v1/files/{id}/versions/{n}/content',
        'POST /api/v1/files/{id}/versions/{n}/restore',
        'DELETE /api/v1/files/{id}/versions/{n}',
        'GET /api/v1/admin/users',
        'GET /api/v1/admin/users/{id}',
        'POST /api/v1/admin/users/{id}/disable',
        'POST /api/v1/admin/users/{id}/enable',
        'PUT /api/v1/admin/users/{id}/quota',
        'POST /api/v1/admin/users/{id}/reset-mfa',
        'DELETE /api/v1/admin/users/{id}',
        'GET /api/v1/admin/invites',
        'POST /api/v1/admin/invites',
        'DELETE /api/v1/admin/invites/{id}',
        'GET /api/v1/admin/system',
        'GET /api/v1/admin/jobs',
        'POST /api/v1/admin/jobs/{id}/retry',
        'DELETE /api/v1/admin/jobs/{id}',
        'PATCH /api/v1/files/{id}',
        'POST /api/v1/files/bulk-delete',
        'POST /api/v1/files/archive',
        'GET /api/v1/folders',
        'POST /api/v1/folders',
        'GET /api/v1/folders/{id}',
        'PATCH /api/v1/folders/{id}',
        'DELETE /api/v1/folders/{id}',
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
    expect(Object.keys(paths['/api/v1/tus/{id}']!.patch!.responses)).toEqual(
      expect.arrayContaining(['204', '400', '404', '409', '410', '413', '415', '423', '460']),
    );
    expect(Object.keys(body.components.schemas)).toEqual(
      expect.arrayContaining(['ErrorDto', 'FileDto', 'JobDto', 'UploadAcceptedDto', 'TokenCreatedDto']),
    );
    expect(Object.keys(paths['/api/v1/files/{id}/versions/{n}']!.delete!.responses)).toEqual(
      expect.arrayContaining(['204', '401', '404', '409']),
    );
  });

  it('is what a client generator needs: public routes, 200s, real query schemas, opaque tokens, ids', async () => {
    const body = await served();
    const operations = operationsOf(body);
    expect(Object.keys(body.paths['/readyz']!.get!.responses).sort()).toEqual(['200', '503']);
    const publicRoutes = ['GET /healthz', 'GET /readyz', 'POST /api/v1/tokens'];
    for (const { key, op } of operations) {
      if (publicRoutes.includes(key)) expect(op.security, key).toEqual([]);
      else expect(op.security, key).toEqual([{ bearer: [] }, { session: [] }]);
      expect(op.operationId, key).toMatch(/^[a-z]+[A-Z][A-Za-z]+$/);
    }
    const ids = operations.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(body.paths['/api/v1/files']!.get!.operationId).toBe('listFiles');
    const paramsOf = (path: string) =>
      Object.fromEntries(
        (body.paths[path]!.get!.parameters ?? []).map((p) => [p.name, { in: p.in, ...p.schema }]),
      );
    const page = {
      limit: { in: 'query', type: 'integer', minimum: 1, maximum: 100, default: 25 },
      cursor: { in: 'query', type: 'string', maxLength: 200 },
    };
    expect(paramsOf('/api/v1/jobs')).toEqual(page);
    expect(paramsOf('/api/v1/files')).toEqual({
      ...page,
      q: { in: 'query', type: 'string', maxLength: 255, description: expect.any(String) },
      folderId: {
        in: 'query',
        type: 'string',
        pattern: expect.stringMatching(/^\^\(root\|/),
        description: expect.any(String),
      },
      status: { in: 'query', type: 'string', enum: [...FILE_STATUSES] },
      sort: { in: 'query', type: 'string', enum: ['createdAt', 'name', 'size'], default: 'createdAt' },
      order: { in: 'query', type: 'string', enum: ['asc', 'desc'], description: expect.any(String) },
    });
    expect(body.components.securitySchemes.bearer).toEqual({
      type: 'http',
      scheme: 'bearer',
      description: expect.stringContaining('Opaque'),
    });
    const schemas = body.components.schemas;
    expect(schemas.FileDto!.properties!.size!.type).toBe('integer');
    expect(schemas.AcceptedFileDto!.properties!.size!.type).toBe('integer');
    expect(schemas.JobProgressDto!.properties!.bytesDone!.type).toBe('integer');
    expect(schemas.VerifyResultDto!.properties!.checkedBytes!.type).toBe('integer');
    expect(Object.keys(schemas.CreateTokenRequest!.properties!).sort()).toEqual([
      'expiresIn',
      'name',
      'otp',
      'password',
      'username',
    ]);
    expect(body.servers?.length).toBeGreaterThan(0);
    // The admin API has a tag of its own, on every admin operation and only there.
    for (const { key, op } of operations) {
      expect(op.tags?.includes('admin'), key).toBe(key.includes('/api/v1/admin/'));
    }
  });

  it('is committed as docs/openapi.json, built without services exactly as the gateway serves it', async () => {
    const generated = await renderOpenApiDocument();
    expect(JSON.parse(generated)).toEqual(await served());
    expect(await readFile(OPENAPI_PATH, 'utf8'), 'run `npm run openapi` and commit docs/openapi.json').toBe(
      generated,
    );
  });

  it('passes the Redocly linter (recommended rules) without a problem', async () => {
    const cli = join(ROOT, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
    const { stdout } = await run(process.execPath, [cli, 'lint', OPENAPI_PATH, '--format=json'], {
      cwd: ROOT,
    });
    const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number } };
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  });

  it('generates the committed typed client, which compiles under tsc --strict', async () => {
    const client = await renderApiClient(await readFile(OPENAPI_PATH, 'utf8'));
    expect(await readFile(API_CLIENT_PATH, 'utf8'), 'run `npm run openapi` and commit the client').toBe(
      client,
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(
      process.execPath,
      [tsc, '--ignoreConfig', '--strict', '--noEmit', '--skipLibCheck', 'false', API_CLIENT_PATH],
      {
        cwd: ROOT,
      },
    );
  });

  it('serves the interactive documentation page', async () => {
    const res = await request(app.getHttpServer()).get('/api/docs/').expect(200);
    expect(res.text).toContain('swagger');
    // Nothing inline for the CSP (style-src 'self', script-src 'self') to refuse, and every asset is served.
    expect(res.text).not.toMatch(/<style|\sstyle=|<script(?![^>]*\ssrc=)/i);
    const assets = [...res.text.matchAll(/(?:href|src)="(\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toEqual(expect.arrayContaining(['/assets/swagger-ui/swagger-ui-bundle.js']));
    for (const asset of assets) await request(app.getHttpServer()).get(asset).expect(200);
    await request(app.getHttpServer()).get('/api/docs').expect(200);
  });
});
