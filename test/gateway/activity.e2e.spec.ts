import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForStatus } from '../support/client.js';
import { bytesOf } from '../support/multipart.js';
import { createUser, TEST_PASSWORD } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

let world: World;

beforeAll(async () => {
  world = await createWorld({ workers: 'in-process' });
});

afterAll(async () => {
  await world?.close();
});

describe('activity page', () => {
  it("shows the user's own audit trail, and nobody else's", async () => {
    const alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
    const bob = await createUser(world.app.getHttpServer(), `bob_${world.id}`);
    const up = await request(world.base)
      .post('/api/v1/uploads')
      .set(alice.auth)
      .attach('file', bytesOf(5000), 'secret-plan.txt');
    const id = up.body.files[0].id as string;
    expect((await waitForStatus(world, id, 'stored')).status).toBe('stored');
    await request(world.base).post(`/api/v1/files/${id}/verify`).set(alice.auth).expect(200);
    await request(world.base).delete(`/api/v1/files/${id}`).set(alice.auth).expect(204);

    const page = await alice.agent.get('/activity').expect(200);
    const actions = [...page.text.matchAll(/data-action="([^"]+)"/g)].map((m) => m[1]);
    for (const action of [
      'user.registered',
      'token.created',
      'upload.accepted',
      'file.stored',
      'file.verified',
      'file.deleted',
    ]) {
      expect(actions).toContain(action);
    }
    expect(page.text).toContain('secret-plan.txt');
    expect(page.text).toContain(id);

    const other = await bob.agent.get('/activity').expect(200);
    expect(other.text).not.toContain(id);
    expect(other.text).not.toContain('secret-plan.txt');
    await request(world.base).get('/activity').expect(303).expect('Location', '/login');
  });

  it('keeps the file name in file events when written, so it still shows after the file is deleted', async () => {
    const carol = await createUser(world.app.getHttpServer(), `carol_${world.id}`);
    const up = await request(world.base)
      .post('/api/v1/uploads')
      .set(carol.auth)
      .attach('file', bytesOf(3000), 'budget 2027.xlsx');
    const id = up.body.files[0].id as string;
    expect((await waitForStatus(world, id, 'stored')).status).toBe('stored');
    await request(world.base).get(`/api/v1/files/${id}/content`).set(carol.auth).expect(200);
    await request(world.base).post(`/api/v1/files/${id}/verify`).set(carol.auth).expect(200);
    await request(world.base).delete(`/api/v1/files/${id}`).set(carol.auth).expect(204);

    const rows: { action: string; details: { filename?: string } }[] = await world.dataSource.query(
      'SELECT action, details FROM audit_events WHERE file_id = $1',
      [id],
    );
    const actions = ['upload.accepted', 'file.stored', 'file.downloaded', 'file.verified', 'file.deleted'];
    expect(rows.map((r) => r.action).sort()).toEqual([...actions].sort());
    for (const r of rows) expect(r.details.filename, r.action).toBe('budget 2027.xlsx');

    const page = await carol.agent.get('/activity').expect(200);
    for (const action of actions) {
      const tr = new RegExp(
        `<tr data-action="${action.replace('.', '\\.')}" data-file-id="${id}"[^>]*>([\\s\\S]*?)</tr>`,
      );
      const cells = tr.exec(page.text)?.[1] ?? '';
      expect(cells, action).toContain(`title="File id ${id}">budget 2027.xlsx</span>`);
      expect(cells, action).toContain(`data-copy="${id}"`);
    }
  });

  it('filters by type and by the user’s own days, and pages with a cursor', async () => {
    const dave = await createUser(world.app.getHttpServer(), `dave_${world.id}`);
    // 50 more events (token creations), so the newest 50 are one page and the rest another.
    for (let i = 0; i < 50; i++) {
      await request(world.base)
        .post('/api/v1/tokens')
        .send({ username: dave.username, password: TEST_PASSWORD, name: `t${i}` })
        .expect(201);
    }
    const actionsOf = (html: string) => [...html.matchAll(/<tr data-action="([^"]+)"/g)].map((m) => m[1]);
    // Token events name the token: the pages must not overlap.
    const idsOf = (html: string) => [...html.matchAll(/<time datetime="([^"]+)"/g)].map((m) => m[1]);
    const first = await dave.agent.get('/activity').expect(200);
    expect(actionsOf(first.text)).toHaveLength(50);
    const older = /href="(\/activity\?cursor[^"]+)" class="[^"]*" rel="next"/.exec(first.text)?.[1];
    expect(older).toBeDefined();
    const second = await dave.agent
      .get(older!.replaceAll('&#x3D;', '=').replaceAll('&amp;', '&'))
      .expect(200);
    const seen = new Set(idsOf(first.text));
    expect(idsOf(second.text).filter((id) => seen.has(id))).toEqual([]);
    // user.registered (registering signs in without a login event) and 51 token.created: 52 in all.
    expect(actionsOf(second.text)).toHaveLength(2);
    expect(second.text).not.toMatch(/rel="next"/);
    expect(second.text).toContain('>Newest</a>');

    const signIns = await dave.agent.get('/activity?type=sign-ins').expect(200);
    expect(new Set(actionsOf(signIns.text))).toEqual(new Set(['user.registered']));

    // Days are the user's: tz is the browser's getTimezoneOffset (minutes behind UTC).
    const now = new Date();
    const day = (d: Date) => d.toISOString().slice(0, 10);
    const today = await dave.agent
      .get(`/activity?type=sign-ins&from=${day(now)}&to=${day(now)}&tz=0`)
      .expect(200);
    expect(actionsOf(today.text)).toEqual(['user.registered']);
    const tomorrow = day(new Date(now.getTime() + 86_400_000));
    const none = await dave.agent.get(`/activity?from=${tomorrow}&tz=0`).expect(200);
    expect(actionsOf(none.text)).toEqual([]);
    expect(none.text).toContain('No activity matches these filters.');
    // 14 hours ahead of UTC, today's events fall between yesterday and tomorrow (UTC dates) whatever the hour.
    const yesterday = day(new Date(now.getTime() - 86_400_000));
    const east = await dave.agent
      .get(`/activity?type=sign-ins&from=${yesterday}&to=${tomorrow}&tz=-840`)
      .expect(200);
    expect(actionsOf(east.text)).toEqual(['user.registered']);

    for (const bad of [
      'type=everything',
      'from=2026-02-30',
      'from=yesterday',
      'tz=9999',
      'cursor=not-a-cursor',
      `from=${tomorrow}&to=${day(now)}`,
    ]) {
      const res = await dave.agent.get(`/activity?${bad}`);
      expect(res.status, bad).toBe(400);
    }
  });
});
