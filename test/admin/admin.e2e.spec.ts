import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OBJECT_STORE, type ObjectStore, objectKeyFor, type ServerToClientEvents } from '#common';
import { createAdmin } from '../../scripts/create-admin.js';
import { tempFiles, upload, waitFor, waitForJob, waitForStored } from '../support/client.js';
import { csrfFrom, formCookie, sessionCookie } from '../support/http.js';
import { createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * The admin area (docs/security.md item 37) against the real PostgreSQL, Redis, object store and an
 * in-process worker: the 404 wall (every admin route, read from the router), the second factor for
 * admins, disabling and enabling mid-session (session, token, socket), quota overrides on the next
 * upload, retrying a failed job until it is stored, deleting a user with their files, the audit search
 * and its CSV, and that no admin route hands out anyone's file content.
 */

const ORIGIN = 'http://tess.test';
type ClientSocket = Socket<ServerToClientEvents>;
let world: World;
let admin: TestUser;
let adminId: string;
let alice: TestUser;
let aliceId: string;
let counter = 0;
const sockets: ClientSocket[] = [];

beforeAll(async () => {
  world = await createWorld({
    workers: 'in-process',
    env: {
      ALLOWED_ORIGINS: ORIGIN,
      JOB_ATTEMPTS: '1',
      ADMIN_MFA_REQUIRED: 'false',
      LOGIN_MAX_FAILURES_PER_IP: '1000',
    },
  });
  admin = await createUser(world.server, `root_${world.id}`);
  // The script promotes an existing account (its create path has its own test below).
  expect(await createAdmin(world.config, admin.username, () => Promise.reject(new Error('not asked')))).toBe(
    'promoted',
  );
  adminId = (await world.users.findByUsername(admin.username))!.id;
  alice = await newUser('alice');
  aliceId = (await world.users.findByUsername(alice.username))!.id;
}, 120_000);

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await world?.close();
});

async function newUser(name: string): Promise<TestUser> {
  counter += 1;
  return createUser(world.server, `${name}${counter}_${world.id}`);
}

/** Every route the router has under the admin prefixes, as `METHOD /path` (params as `:name`). */
function adminRoutes(gateway = world.app): Array<{ method: string; path: string }> {
  const express = gateway.getHttpAdapter().getInstance() as {
    router: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> };
  };
  const routes: Array<{ method: string; path: string }> = [];
  for (const layer of express.router.stack) {
    const route = layer.route;
    if (!route || !/^\/(admin|api\/v1\/admin)(\/|$)/.test(route.path)) continue;
    for (const [method, on] of Object.entries(route.methods))
      if (on) routes.push({ method, path: route.path });
  }
  return routes;
}

/** The routes with their params filled in with ids that exist (so a 404 cannot come from a lookup). */
function concrete(path: string, ids: { user: string; file: string }): string {
  return path.replace(':id', path.includes('/jobs/') ? ids.file : ids.user).replace(/:[A-Za-z]+/g, ids.user);
}

async function send(
  agent: request.Agent | request.SuperTest<request.Test>,
  method: string,
  url: string,
  headers: Record<string, string>,
) {
  const call = (agent as unknown as Record<string, (u: string) => request.Test>)[method]!(url);
  for (const [name, value] of Object.entries(headers)) call.set(name, value);
  return call;
}

function connect(cookie: string): ClientSocket {
  const socket: ClientSocket = io(world.base, {
    transports: ['websocket'],
    extraHeaders: { Origin: ORIGIN, Cookie: cookie },
    reconnection: false,
    forceNew: true,
  });
  sockets.push(socket);
  return socket;
}

async function login(username: string): Promise<request.Response> {
  const page = await request(world.server).get('/login');
  return request(world.server)
    .post('/login')
    .set('Cookie', formCookie(page)!)
    .type('form')
    .send({ username, password: TEST_PASSWORD, _csrf: csrfFrom(page) });
}

describe('the 404 wall', () => {
  it('answers a non-admin (session or token) and a stranger on every admin route exactly like an unknown route', async () => {
    const routes = adminRoutes();
    // The router really lists the area: pages and API, reads and actions.
    const keys = routes.map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(keys).toEqual(
      expect.arrayContaining([
        'GET /admin',
        'GET /admin/users',
        'POST /admin/users/:id/disable',
        'GET /admin/audit.csv',
        'GET /api/v1/admin/users',
        'DELETE /api/v1/admin/users/:id',
        'POST /api/v1/admin/jobs/:id/retry',
      ]),
    );
    expect(routes.length).toBeGreaterThanOrEqual(30);
    const [file] = await upload(world, alice, [{ filename: 'wall.txt', body: Buffer.from('wall') }]);
    const ids = { user: aliceId, file: file!.id };
    const bob = await newUser('bob');
    const home = await bob.agent.get('/home').expect(200);
    const csrf = csrfFrom(home);
    // A stranger with a valid anonymous form token, so that CSRF is not what answers.
    const stranger = request.agent(world.server);
    const strangerCsrf = csrfFrom(await stranger.get('/login'));
    // The queue dashboard is plain Express middleware, not in Nest's route table: listed by hand.
    const boards = [
      { method: 'get', path: '/admin/queues' },
      { method: 'get', path: '/admin/queues/api/queues' },
      { method: 'put', path: '/admin/queues/api/queues/crypto/retry/failed' },
      { method: 'get', path: '/admin/queue-actions' },
      { method: 'put', path: '/admin/queue-actions/api/queues/crypto/retry/failed' },
    ];
    for (const { method, path } of [...routes, ...boards]) {
      const url = concrete(path, ids);
      const api = url.startsWith('/api/');
      const callers: Array<
        [string, request.Agent | request.SuperTest<request.Test>, Record<string, string>]
      > = [
        ['session', bob.agent, { 'X-CSRF-Token': csrf, Accept: 'application/json' }],
        ['stranger', stranger, { 'X-CSRF-Token': strangerCsrf, Accept: 'application/json' }],
      ];
      if (api) callers.push(['token', request(world.server) as never, bob.auth]);
      for (const [who, agent, headers] of callers) {
        const res = await send(agent, method, url, headers);
        expect(res.status, `${who} ${method.toUpperCase()} ${url}`).toBe(404);
        expect(res.body.message, `${who} ${method.toUpperCase()} ${url}`).toBe(
          `Cannot ${method.toUpperCase()} ${url}`,
        );
      }
    }
    // The admin's own session reaches them (a GET of each page answers).
    for (const path of [
      '/admin/users',
      `/admin/users/${aliceId}`,
      '/admin/system',
      '/admin/invites',
      '/admin/audit',
    ]) {
      await admin.agent.get(path).expect(200);
    }
    await request(world.server).get('/api/v1/admin/users').set(admin.auth).expect(200);
  }, 120_000);

  it('sends an admin without a second factor to enrolment when ADMIN_MFA_REQUIRED', async () => {
    const strict = await world.startGateway({
      ...world.config,
      admin: { ...world.config.admin, mfaRequired: true },
    });
    const agent = request.agent(strict.url);
    const page = await agent.get('/login');
    await agent
      .post('/login')
      .type('form')
      .send({ username: admin.username, password: TEST_PASSWORD, _csrf: csrfFrom(page) })
      .expect(303);
    const res = await agent.get('/admin/users').expect(303);
    expect(res.headers.location).toBe('/account/security');
    const security = await agent.get('/account/security').expect(200);
    expect(security.text).toContain('Administrators need two-factor sign-in');
    const api = await request(strict.url).get('/api/v1/admin/users').set(admin.auth).expect(403);
    expect(api.body.message).toMatch(/two-factor/);
    // A non-admin still sees nothing there.
    await request(strict.url).get('/api/v1/admin/users').set(alice.auth).expect(404);
  });
});

describe('accounts', () => {
  it('disabling cuts a signed-in user off at once (session, token, socket); enabling restores access', async () => {
    const carol = await newUser('carol');
    const carolId = (await world.users.findByUsername(carol.username))!.id;
    const cookie = sessionCookie(await login(carol.username))!;
    const socket = connect(cookie);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    const disconnected = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()));
    await request(world.server).get('/api/v1/files').set('Cookie', cookie).expect(200);
    await request(world.server).get('/api/v1/files').set(carol.auth).expect(200);

    await request(world.server).post(`/api/v1/admin/users/${carolId}/disable`).set(admin.auth).expect(204);
    await request(world.server).get('/api/v1/files').set('Cookie', cookie).expect(401);
    await request(world.server).get('/api/v1/files').set(carol.auth).expect(401);
    await carol.agent.get('/api/v1/usage').expect(401);
    await disconnected;
    const refused = await login(carol.username);
    expect(refused.status).toBe(401);
    expect(refused.text).toContain('This account is disabled');
    await request(world.server).post(`/api/v1/admin/users/${carolId}/disable`).set(admin.auth).expect(409);
    // An admin cannot lock themself out.
    await request(world.server).post(`/api/v1/admin/users/${adminId}/disable`).set(admin.auth).expect(400);

    await request(world.server).post(`/api/v1/admin/users/${carolId}/enable`).set(admin.auth).expect(204);
    await request(world.server).get('/api/v1/files').set(carol.auth).expect(200);
    expect((await login(carol.username)).status).toBe(303);
    const events = await world.audit.listForUser(adminId);
    expect(events.map((e) => [e.action, e.details.targetId])).toEqual(
      expect.arrayContaining([
        ['admin.user_disabled', carolId],
        ['admin.user_enabled', carolId],
      ]),
    );
  });

  it('a quota override takes effect on the next upload (409 files, 413 bytes) and can be cleared', async () => {
    const dave = await newUser('dave');
    const daveId = (await world.users.findByUsername(dave.username))!.id;
    await upload(world, dave, [{ filename: 'one.txt', body: Buffer.from('one') }]);
    const set = await request(world.server)
      .put(`/api/v1/admin/users/${daveId}/quota`)
      .set(admin.auth)
      .send({ quotaBytes: null, quotaFiles: 1 })
      .expect(200);
    expect(set.body).toMatchObject({ quotaFiles: 1, quotaBytes: null, files: 1 });
    await expect(upload(world, dave, [{ filename: 'two.txt', body: Buffer.from('two') }])).rejects.toThrow(
      /409/,
    );
    await request(world.server)
      .put(`/api/v1/admin/users/${daveId}/quota`)
      .set(admin.auth)
      .send({ quotaBytes: 10, quotaFiles: 0 })
      .expect(200);
    const usage = await request(world.server).get('/api/v1/usage').set(dave.auth).expect(200);
    expect(usage.body).toMatchObject({ files: 1, bytes: 3, quotaBytes: 10 });
    await expect(
      upload(world, dave, [{ filename: 'big.txt', body: Buffer.from('more than ten') }]),
    ).rejects.toThrow(/413/);
    await upload(world, dave, [{ filename: 'small.txt', body: Buffer.from('small') }]);
    await request(world.server)
      .put(`/api/v1/admin/users/${daveId}/quota`)
      .set(admin.auth)
      .send({ quotaBytes: -1, quotaFiles: 0 })
      .expect(400);
    await request(world.server)
      .put(`/api/v1/admin/users/${daveId}/quota`)
      .set(admin.auth)
      .send({ quotaBytes: null, quotaFiles: null })
      .expect(200);
    await upload(world, dave, [{ filename: 'again.txt', body: Buffer.from('more than ten bytes') }]);
  });

  it('resets a second factor (audited for the user and the admin)', async () => {
    const res = await request(world.server)
      .post(`/api/v1/admin/users/${aliceId}/reset-mfa`)
      .set(admin.auth)
      .expect(200);
    expect(res.body).toEqual({ removed: false });
    const own = await world.audit.listForUser(aliceId);
    expect(own.find((e) => e.action === 'mfa.reset')?.details).toMatchObject({ by: 'admin', adminId });
  });

  it('deletes a user with all their files in a background job, after the username is confirmed', async () => {
    const erin = await newUser('erin');
    const erinId = (await world.users.findByUsername(erin.username))!.id;
    const [file] = await upload(world, erin, [{ filename: 'gone.bin', body: randomBytes(4096) }]);
    await waitForStored(world, file!.id);
    const store = world.store;
    expect(await store.stat(objectKeyFor(file!.id))).not.toBeNull();
    await request(world.server).post(`/api/v1/files/${file!.id}/shares`).set(erin.auth).send({}).expect(201);
    const shares = async () =>
      Number(
        (
          (await world.dataSource.query('SELECT count(*) AS n FROM shares WHERE owner_id = $1', [
            erinId,
          ])) as [{ n: string }]
        )[0].n,
      );
    expect(await shares()).toBe(1);
    await request(world.server).delete(`/api/v1/admin/users/${erinId}`).set(admin.auth).expect(400);
    await request(world.server)
      .delete(`/api/v1/admin/users/${erinId}?confirm=someone-else`)
      .set(admin.auth)
      .expect(400);
    const accepted = await request(world.server)
      .delete(`/api/v1/admin/users/${erinId}?confirm=${erin.username}`)
      .set(admin.auth)
      .expect(202);
    expect(accepted.body.jobId).toBe(`delete-user-${erinId}`);
    // Disabled at once, while the job runs.
    await request(world.server).get('/api/v1/files').set(erin.auth).expect(401);
    await waitFor('the user to be deleted', async () => (await world.users.findById(erinId)) === null);
    expect(await world.files.findById(file!.id)).toBeNull();
    expect(await store.stat(objectKeyFor(file!.id))).toBeNull();
    expect(await shares()).toBe(0);
    expect(await tempFiles(world.config)).not.toContain(file!.id);
    const events = await world.audit.listForUser(adminId);
    expect(events.find((e) => e.action === 'admin.user_deleted')?.details).toMatchObject({
      targetId: erinId,
      targetUsername: erin.username,
      files: 1,
    });
    // The deleted user's own trail is kept (user_id NULL) and still verifies.
    expect((await world.audit.verify()).ok).toBe(true);
  }, 90_000);
});

describe('jobs', () => {
  it('a failed job retried from the admin area ends stored', async () => {
    const store = world.worker!.get<ObjectStore>(OBJECT_STORE);
    const put = store.put.bind(store);
    // The store takes the whole body, then fails (as an S3 that errs on completing the upload).
    store.put = async (_key, body) => {
      for await (const _chunk of body) {
        // drained
      }
      throw new Error('object store down for the test');
    };
    let file: { id: string } | undefined;
    try {
      [file] = await upload(world, alice, [{ filename: 'retry.bin', body: randomBytes(2048) }]);
      await waitForJob(world, file!.id, 'failed');
    } finally {
      store.put = put;
    }
    expect((await world.files.findById(file!.id))!.status).toBe('failed');
    const failed = await request(world.server).get('/api/v1/admin/jobs').set(admin.auth).expect(200);
    expect(failed.body.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: file!.id,
          name: 'encrypt-file',
          failedReason: expect.stringMatching(/down/),
        }),
      ]),
    );
    const page = await admin.agent.get('/admin/system').expect(200);
    expect(page.text).toContain(`data-job-id="${file!.id}"`);
    await admin.agent
      .post(`/admin/jobs/${file!.id}/retry`)
      .type('form')
      .send({ _csrf: csrfFrom(page) })
      .expect(303);
    await waitFor(
      'the retried file to be stored',
      async () => (await world.files.findById(file!.id))?.status === 'stored',
    );
    await waitForJob(world, file!.id, 'completed');
    // Only failed jobs are retried or discarded.
    await request(world.server).post(`/api/v1/admin/jobs/${file!.id}/retry`).set(admin.auth).expect(409);
    await request(world.server).post('/api/v1/admin/jobs/not-a-job/retry').set(admin.auth).expect(404);
  }, 90_000);
});

describe('metadata only', () => {
  it("no admin route hands out another user's file content", async () => {
    const marker = `secret-${randomBytes(12).toString('hex')}`;
    const [file] = await upload(world, alice, [{ filename: 'private.txt', body: Buffer.from(marker) }]);
    await waitForStored(world, file!.id);
    // The content API itself: the admin is not the owner.
    await request(world.server).get(`/api/v1/files/${file!.id}/content`).set(admin.auth).expect(404);
    await request(world.server).get(`/api/v1/files/${file!.id}`).set(admin.auth).expect(404);
    await admin.agent.get(`/files/${file!.id}/content`).expect(404);
    // Every admin GET, with the file's id wherever a route takes one.
    const gets = adminRoutes().filter((r) => r.method === 'get');
    const urls = [
      ...gets.flatMap((r) => [
        concrete(r.path, { user: aliceId, file: file!.id }),
        concrete(r.path, { user: file!.id, file: file!.id }),
      ]),
      '/admin/queues/api/queues',
      `/admin/queues/api/queues/crypto/${file!.id}`,
    ];
    for (const url of urls) {
      const res = await admin.agent.get(url);
      expect(res.status, url).toBeLessThan(500);
      expect(res.text, url).not.toContain(marker);
      const api = await request(world.server).get(url).set(admin.auth);
      expect(api.text, url).not.toContain(marker);
    }
    // The dashboard shows both queues: sealed uploads (crypto) and the followers of arriving ones.
    const board = await admin.agent.get('/admin/queues/api/queues').expect(200);
    expect((board.body.queues as Array<{ name: string }>).map((q) => q.name).sort()).toEqual([
      'crypto',
      'follow',
    ]);
  }, 60_000);
});

describe('audit', () => {
  it("searches every user's events and exports them as CSV that no spreadsheet runs", async () => {
    const hostile = await createUser(world.server, `-x${world.id}`.slice(0, 40));
    const hostileId = (await world.users.findByUsername(hostile.username))!.id;
    const page = await admin.agent.get(`/admin/audit?user=${hostile.username}&type=sign-ins`).expect(200);
    expect(page.text).toContain('data-action="user.registered"');
    expect(page.text).not.toContain('data-action="token.created"');
    await admin.agent.get('/admin/audit?type=nonsense').expect(400);
    const csv = await admin.agent.get(`/admin/audit.csv?user=${hostileId}`).expect(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe('time,user_id,username,action,label,file_id,ip,details');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const line of lines.slice(1)) {
      expect(line).toContain(`"'${hostile.username}"`);
      expect(line).not.toMatch(/(^|,)"[=+\-@]/);
    }
    const exported = await world.audit.listForUser(adminId);
    expect(exported.find((e) => e.action === 'admin.audit_exported')?.details).toMatchObject({
      user: hostileId,
    });
  });
});
