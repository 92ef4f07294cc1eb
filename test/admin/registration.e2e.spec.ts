import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../scripts/create-admin.js';
import { csrfFrom } from '../support/http.js';
import { createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type RunningGateway, type World } from '../support/world.js';

/**
 * REGISTRATION=open|invite|closed (docs/security.md item 37) and the invite links: single-use, expiring,
 * optionally bound to an address, refused with a clear page when they cannot be used.
 */

let world: World;
let invite: RunningGateway;
let closed: RunningGateway;
let admin: TestUser;
let counter = 0;

beforeAll(async () => {
  world = await createWorld({ env: { ADMIN_MFA_REQUIRED: 'false', REGISTER_MAX_PER_IP: '1000' } });
  admin = await createUser(world.server, `boss_${world.id}`);
  await createAdmin(world.config, admin.username, () => Promise.reject(new Error('not asked')));
  const mode = (m: 'invite' | 'closed') => ({
    ...world.config,
    registration: { ...world.config.registration, mode: m },
  });
  invite = await world.startGateway(mode('invite'));
  closed = await world.startGateway(mode('closed'));
}, 60_000);

afterAll(async () => {
  await world?.close();
});

function name(prefix: string): string {
  counter += 1;
  return `${prefix}${counter}_${world.id}`;
}

async function newInvite(body: Record<string, string> = {}): Promise<{ id: string; url: string }> {
  const res = await request(invite.url).post('/api/v1/admin/invites').set(admin.auth).send(body).expect(201);
  expect(res.body.url).toMatch(/\/register\?invite=inv_[A-Za-z0-9_-]{43}$/);
  return res.body;
}

/** GET the register page (at `path`) and submit it; returns both answers. */
async function register(url: string, path: string, fields: { username: string; email?: string }) {
  const agent = request.agent(url);
  const page = await agent.get(path);
  if (page.status !== 200) return { page, res: page };
  const token = /name="invite" value="([^"]+)"/.exec(page.text)?.[1];
  const res = await agent
    .post('/register')
    .type('form')
    .send({
      username: fields.username,
      email: fields.email ?? `${fields.username}@example.test`,
      password: TEST_PASSWORD,
      _csrf: csrfFrom(page),
      ...(token ? { invite: token } : {}),
    });
  return { page, res };
}

const pathOf = (link: string) => new URL(link).pathname + new URL(link).search;

describe('REGISTRATION=invite', () => {
  it('answers /register without an invite with a page saying registration is by invitation', async () => {
    const page = await request(invite.url).get('/register').expect(403);
    expect(page.text).toContain('Registration is by invitation');
    // A form posted without one is refused the same way, and makes no account.
    const form = await request(invite.url).get('/login');
    const username = name('nobody');
    await request(invite.url)
      .post('/register')
      .set(
        'Cookie',
        (form.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; '),
      )
      .type('form')
      .send({ username, email: `${username}@example.test`, password: TEST_PASSWORD, _csrf: csrfFrom(form) })
      .expect(403);
    expect(await world.users.findByUsername(username)).toBeNull();
  });

  it('invite -> register -> the invite is used up and refused the second time', async () => {
    const created = await newInvite();
    const username = name('invited');
    const { page, res } = await register(invite.url, pathOf(created.url), { username });
    expect(page.text).toContain('data-testid="invite-note"');
    expect(res.status).toBe(303);
    const user = await world.users.findByUsername(username);
    expect(user).not.toBeNull();
    const list = await request(invite.url).get('/api/v1/admin/invites').set(admin.auth).expect(200);
    expect(list.body.items.find((i: { id: string }) => i.id === created.id)).toMatchObject({ state: 'used' });
    const again = await register(invite.url, pathOf(created.url), { username: name('second') });
    expect(again.page.status).toBe(410);
    expect(again.page.text).toContain('This invite was already used');
    const events = await world.audit.listForUser(user!.id);
    expect(events.find((e) => e.action === 'user.registered')?.details).toEqual({ inviteId: created.id });
  });

  it('refuses an expired, a revoked and a made-up invite; a bound invite takes only its address', async () => {
    const expired = await newInvite();
    await world.dataSource.query(
      `UPDATE invites SET expires_at = now() - interval '1 second' WHERE id = $1`,
      [expired.id],
    );
    const gone = await request(invite.url).get(pathOf(expired.url)).expect(410);
    expect(gone.text).toContain('no longer valid');
    const revoked = await newInvite();
    await request(invite.url).delete(`/api/v1/admin/invites/${revoked.id}`).set(admin.auth).expect(204);
    await request(invite.url).delete(`/api/v1/admin/invites/${revoked.id}`).set(admin.auth).expect(404);
    await request(invite.url).get(pathOf(revoked.url)).expect(410);
    await request(invite.url).get('/register?invite=inv_made-up').expect(410);

    const bound = await newInvite({ email: 'Chosen@Example.test', expiresIn: '2h' });
    const wrong = await register(invite.url, pathOf(bound.url), {
      username: name('wrong'),
      email: 'other@example.test',
    });
    expect(wrong.res.status).toBe(400);
    expect(wrong.res.text).toContain('This invite is for Chosen@Example.test');
    // Refused without using it up: the right address still registers.
    const right = await register(invite.url, pathOf(bound.url), {
      username: name('chosen'),
      email: 'chosen@example.test',
    });
    expect(right.res.status).toBe(303);
    // Malformed invite requests are 400s.
    await request(invite.url)
      .post('/api/v1/admin/invites')
      .set(admin.auth)
      .send({ expiresIn: '5m' })
      .expect(400);
    await request(invite.url)
      .post('/api/v1/admin/invites')
      .set(admin.auth)
      .send({ email: 'nope' })
      .expect(400);
    await request(invite.url)
      .post('/api/v1/admin/invites')
      .set(admin.auth)
      .send({ role: 'admin' })
      .expect(400);
  });

  it('lets only one of two registrations racing for one invite through', async () => {
    const created = await newInvite();
    const [a, b] = await Promise.all([
      register(invite.url, pathOf(created.url), { username: name('racer') }),
      register(invite.url, pathOf(created.url), { username: name('racer') }),
    ]);
    expect([a.res.status, b.res.status].sort()).toEqual([303, 410]);
  });
});

describe('REGISTRATION=closed', () => {
  it('hides the register links and refuses registration', async () => {
    const login = await request(closed.url).get('/login').expect(200);
    expect(login.text).not.toContain('href="/register"');
    const page = await request(closed.url).get('/register').expect(403);
    expect(page.text).toContain('Registration is closed');
    const username = name('closed');
    await request(closed.url)
      .post('/register')
      .set(
        'Cookie',
        (login.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; '),
      )
      .type('form')
      .send({ username, email: `${username}@example.test`, password: TEST_PASSWORD, _csrf: csrfFrom(login) })
      .expect(403);
    expect(await world.users.findByUsername(username)).toBeNull();
    // Open (the embedded default) still shows the link.
    expect((await request(world.server).get('/login')).text).toContain('href="/register"');
  });
});

describe('create-admin', () => {
  it('creates an admin with the password it reads, refuses a weak one, and promotes only once', async () => {
    const weak = name('weak');
    await expect(createAdmin(world.config, weak, async () => 'short')).rejects.toThrow(/8/);
    expect(await world.users.findByUsername(weak)).toBeNull();
    await expect(createAdmin(world.config, 'no spaces allowed', async () => TEST_PASSWORD)).rejects.toThrow(
      /Usernames/,
    );
    const username = name('first');
    expect(await createAdmin(world.config, username, async () => TEST_PASSWORD)).toBe('created');
    expect((await world.users.findByUsername(username))!.role).toBe('admin');
    expect(await createAdmin(world.config, username, () => Promise.reject(new Error('not asked')))).toBe(
      'already',
    );
    const token = await request(world.server)
      .post('/api/v1/tokens')
      .send({ username, password: TEST_PASSWORD, name: 'admin' })
      .expect(201);
    await request(world.server)
      .get('/api/v1/admin/users')
      .set('Authorization', `Bearer ${token.body.token}`)
      .expect(200);
  });

  it('ADMIN_USERNAMES promotes the named accounts that exist when a gateway starts, audited', async () => {
    const named = await createUser(world.server, name('named'));
    const id = (await world.users.findByUsername(named.username))!.id;
    await request(world.server).get('/api/v1/admin/users').set(named.auth).expect(404);
    const gateway = await world.startGateway({
      ...world.config,
      admin: { ...world.config.admin, usernames: [named.username.toUpperCase(), 'nobody-by-that-name'] },
    });
    expect((await world.users.findById(id))!.role).toBe('admin');
    await request(gateway.url).get('/api/v1/admin/users').set(named.auth).expect(200);
    const events = await world.audit.listForUser(id);
    expect(events.find((e) => e.action === 'admin.promoted')?.details).toEqual({ by: 'ADMIN_USERNAMES' });
  });
});
