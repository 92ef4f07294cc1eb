import { io, type Socket } from 'socket.io-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerToClientEvents } from '#common';
import { csrfFrom, formCookie, sessionCookie } from '../support/http.js';
import { bytesOf } from '../support/multipart.js';
import { TEST_PASSWORD } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

let world: World;
let urls: string[] = [];
const sockets: Socket<ServerToClientEvents>[] = [];

/** Registers on `url` and returns the logged-in session cookie and a bearer token. */
async function account(url: string, username: string) {
  const page = await request(url).get('/register');
  const res = await request(url)
    .post('/register')
    .set('Cookie', formCookie(page)!)
    .type('form')
    .send({ username, email: `${username}@example.test`, password: TEST_PASSWORD, _csrf: csrfFrom(page) })
    .expect(303);
  const token = (
    await request(url).post('/api/v1/tokens').send({ username, password: TEST_PASSWORD }).expect(201)
  ).body.token;
  return { cookie: sessionCookie(res)!, auth: { Authorization: `Bearer ${token}` } };
}

function listen(url: string, cookie: string) {
  const socket: Socket<ServerToClientEvents> = io(url, {
    transports: ['websocket'],
    extraHeaders: { Origin: url, Cookie: cookie },
    reconnection: false,
    forceNew: true,
  });
  sockets.push(socket);
  const completed: string[] = [];
  const created: string[] = [];
  socket.on('job:completed', (e) => completed.push(e.fileId));
  socket.on('file:created', (e) => created.push(e.fileId));
  return {
    socket,
    completed,
    created,
    ready: new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    }),
  };
}

async function until(check: () => boolean, what: string, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  // Each gateway allows both origins, so a page of one may open sockets to the other.
  world = await createWorld({ gateway: 'process', gateways: 2, ownOrigins: true, workers: 1 });
  urls = world.urls;
});

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await world?.close();
});

describe('two gateway processes', () => {
  it('store 60 files uploaded concurrently by three users exactly once, while a worker is stopped mid-run', async () => {
    const extra = [await world.startWorker(), await world.startWorker()];
    const users = await Promise.all(
      ['dave', 'erin', 'frank'].map(async (name, i) => {
        const url = urls[i % 2]!;
        const acc = await account(url, `${name}_${world.id}`);
        const events = listen(urls[(i + 1) % 2]!, acc.cookie);
        await events.ready;
        return { ...acc, url, events, files: [] as string[] };
      }),
    );
    const uploads = users.flatMap((user) =>
      Array.from({ length: 20 }, (_, n) =>
        request(user.url)
          .post('/api/v1/uploads')
          .set(user.auth)
          .attach('file', bytesOf(150_000 + n * 1_000), `f${n}.bin`)
          .expect(202)
          .then((res) => user.files.push(res.body.files[0].id as string)),
      ),
    );
    // Stop one worker gracefully while the uploads are being processed.
    setTimeout(() => extra[0]!.child.kill('SIGTERM'), 300);
    await Promise.all(uploads);
    for (const user of users) {
      await until(
        () => user.files.every((id) => user.events.completed.includes(id)),
        `${user.url} completions`,
        60_000,
      );
    }
    expect(await extra[0]!.exited).toEqual({ code: 0, signal: null });
    for (const user of users) {
      // Each user saw exactly their own 20 completions, each once.
      expect([...user.events.completed].sort()).toEqual([...user.files].sort());
      const listed = await request(user.url).get('/api/v1/files?limit=100').set(user.auth).expect(200);
      expect(listed.body.items).toHaveLength(20);
      expect(listed.body.items.every((f: { status: string }) => f.status === 'stored')).toBe(true);
    }
  });

  it('each deliver new files and job events to their own clients, whichever replica received the upload', async () => {
    const [g1, g2] = urls as [string, string];
    const alice = await account(g1, `alice_${world.id}`);
    const bob = await account(g2, `bob_${world.id}`);
    const aliceEvents = listen(g1, alice.cookie);
    const bobEvents = listen(g2, bob.cookie);
    await Promise.all([aliceEvents.ready, bobEvents.ready]);

    // Each user uploads through the *other* replica than the one their socket is on.
    const aliceFile = (
      await request(g2)
        .post('/api/v1/uploads')
        .set(alice.auth)
        .attach('file', bytesOf(1_000_000), 'a.bin')
        .expect(202)
    ).body.files[0].id as string;
    const bobFile = (
      await request(g1)
        .post('/api/v1/uploads')
        .set(bob.auth)
        .attach('file', bytesOf(2_000_000), 'b.bin')
        .expect(202)
    ).body.files[0].id as string;

    await until(() => aliceEvents.completed.includes(aliceFile), "alice's completion");
    await until(() => bobEvents.completed.includes(bobFile), "bob's completion");
    await new Promise((r) => setTimeout(r, 500));
    expect(aliceEvents.completed).toEqual([aliceFile]);
    expect(bobEvents.completed).toEqual([bobFile]);
    // The new rows too, once each, announced by the replica that accepted the upload.
    expect(aliceEvents.created).toEqual([aliceFile]);
    expect(bobEvents.created).toEqual([bobFile]);
  });

  it('disconnects a session’s sockets on every replica when it logs out on one', async () => {
    const [g1, g2] = urls as [string, string];
    const carol = await account(g1, `carol_${world.id}`);
    const onOther = listen(g2, carol.cookie);
    await onOther.ready;
    const gone = new Promise<string>((resolve) => onOther.socket.once('disconnect', resolve));
    const home = await request(g1).get('/home').set('Cookie', carol.cookie).expect(200);
    await request(g1)
      .post('/logout')
      .set('Cookie', carol.cookie)
      .type('form')
      .send({ _csrf: csrfFrom(home) })
      .expect(303);
    expect(await gone).toBe('io server disconnect');
  });
});
