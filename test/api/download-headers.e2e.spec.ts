import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadContent, type UploadedFile, upload, waitForStored } from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Issue 22, the smaller findings on responses: downloads never serve an executable type (the declared
 * one is echoed only when passive), a suffix range longer than the file is 206 for all of it, and
 * every /api/v1 JSON answer carries `Cache-Control: no-store`.
 */

let world: World;
let alice: TestUser;
const files: Record<string, UploadedFile> = {};
const body = randomBytes(500);

beforeAll(async () => {
  // The download defense must hold whatever the upload policy lets in (files stored before it, or an
  // operator's BLOCKED_TYPES): here nothing is blocked, so a declared text/javascript is stored at all.
  world = await createWorld({ workers: 'in-process', env: { BLOCKED_TYPES: 'none' } });
  alice = await createUser(world.server, `alice_${world.id}`);
  const declared = ['text/html', 'image/svg+xml', 'text/javascript', 'application/atom+xml', 'image/png'];
  const uploaded = await upload(
    world,
    alice,
    declared.map((contentType, i) => ({ filename: `f${i}.bin`, contentType, body })),
  );
  for (const [i, file] of uploaded.entries()) files[declared[i]!] = file;
  for (const file of uploaded) await waitForStored(world, file.id);
}, 90_000);

afterAll(async () => {
  await world?.close();
});

describe('download Content-Type policy', () => {
  it.each(['text/html', 'image/svg+xml', 'text/javascript', 'application/atom+xml'])(
    'a file declared %s downloads as application/octet-stream, attachment, nosniff',
    async (declared) => {
      const res = await downloadContent(world, alice, files[declared]!.id);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/octet-stream');
      expect(res.headers['content-disposition']).toMatch(/^attachment;/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body.equals(body)).toBe(true);
    },
  );

  it('a passive declared type is echoed', async () => {
    const res = await downloadContent(world, alice, files['image/png']!.id);
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.headers['content-disposition']).toMatch(/^attachment;/);
  });
});

describe('suffix ranges (RFC 9110 14.1.2)', () => {
  it('bytes=-99999 on a 500-byte file is 206 with every byte', async () => {
    const res = await downloadContent(world, alice, files['image/png']!.id, { Range: 'bytes=-99999' });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe('bytes 0-499/500');
    expect(res.body.equals(body)).toBe(true);
  });

  it('bytes=-0 stays unsatisfiable', async () => {
    const res = await downloadContent(world, alice, files['image/png']!.id, { Range: 'bytes=-0' });
    expect(res.status).toBe(416);
  });
});

describe('Cache-Control on /api/v1', () => {
  it('JSON answers, errors included, carry no-store for bearer and session clients', async () => {
    const id = files['image/png']!.id;
    for (const path of ['/api/v1/files', `/api/v1/files/${id}`, `/api/v1/jobs/${id}`, '/api/v1/tokens']) {
      const res = await request(world.server).get(path).set(alice.auth).expect(200);
      expect(res.headers['cache-control'], path).toBe('no-store');
      const session = await alice.agent.get(path).expect(200);
      expect(session.headers['cache-control'], path).toBe('no-store');
    }
    const missing = await request(world.server).get('/api/v1/files/not-a-uuid').set(alice.auth).expect(404);
    expect(missing.headers['cache-control']).toBe('no-store');
    const anonymous = await request(world.server).get('/api/v1/files').expect(401);
    expect(anonymous.headers['cache-control']).toBe('no-store');
  });

  it('downloads keep their own private, no-store', async () => {
    const res = await downloadContent(world, alice, files['image/png']!.id);
    expect(res.headers['cache-control']).toBe('private, no-store');
  });
});
