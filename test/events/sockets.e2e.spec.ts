import { io, type Socket } from 'socket.io-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileRepository, type ServerToClientEvents } from '#common';
import { waitForStatus } from '../support/client.js';
import { formCookie, sessionCookie } from '../support/http.js';
import { bytesOf } from '../support/multipart.js';
import { createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type RunningGateway, type World } from '../support/world.js';

type ClientSocket = Socket<ServerToClientEvents>;
let world: World;
let gw: RunningGateway;
const sockets: ClientSocket[] = [];

/** Logs in with a fresh session and returns its cookie. */
async function login(user: TestUser): Promise<string> {
  const page = await request(gw.url).get('/login');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1];
  const res = await request(gw.url)
    .post('/login')
    .set('Cookie', formCookie(page)!)
    .type('form')
    .send({ username: user.username, password: TEST_PASSWORD, _csrf: csrf });
  expect(res.status).toBe(303);
  return sessionCookie(res)!;
}

function connect(
  url: string,
  headers: Record<string, string>,
  transports: Array<'websocket' | 'polling'> = ['websocket'],
): ClientSocket {
  const socket: ClientSocket = io(url, {
    transports,
    extraHeaders: headers,
    reconnection: false,
    forceNew: true,
  });
  sockets.push(socket);
  return socket;
}

function connected(socket: ClientSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error) => reject(error));
  });
}

function refused(socket: ClientSocket): Promise<Error> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => reject(new Error('the socket was accepted')));
    socket.once('connect_error', (error) => resolve(error));
  });
}

beforeAll(async () => {
  world = await createWorld({ env: { ALLOWED_ORIGINS: 'http://tess.test' } });
  gw = { app: world.app, url: world.base };
});

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await world?.close();
});

describe('Socket.IO', () => {
  it('refuses a socket without a session', async () => {
    const error = await refused(connect(gw.url, { Origin: 'http://tess.test' }));
    expect(error.message).toMatch(/websocket error|xhr poll error|401/i);
  });

  it('refuses a socket from another origin even with a valid session', async () => {
    const user = await createUser(gw.app.getHttpServer(), `origin_${world.id}`);
    const cookie = await login(user);
    await refused(connect(gw.url, { Origin: 'http://evil.test', Cookie: cookie }));
    await refused(connect(gw.url, { Cookie: cookie }));
    await connected(connect(gw.url, { Origin: 'http://tess.test', Cookie: cookie }));
  });

  it('accepts same-origin long-polling (no Origin, Fetch Metadata same-origin) and refuses it from elsewhere', async () => {
    const user = await createUser(gw.app.getHttpServer(), `polling_${world.id}`);
    const cookie = await login(user);
    const polling = connect(gw.url, { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' }, ['polling']);
    await connected(polling);
    expect(polling.io.engine.transport.name).toBe('polling');
    for (const site of ['cross-site', 'same-site', 'none']) {
      await refused(connect(gw.url, { Cookie: cookie, 'Sec-Fetch-Site': site }, ['polling']));
    }
    await refused(connect(gw.url, { Cookie: cookie }, ['polling']));
    // A present Origin decides, whatever the Fetch Metadata claims.
    await refused(
      connect(gw.url, { Origin: 'http://evil.test', Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' }, [
        'polling',
      ]),
    );
  });

  it("delivers a new file, its progress and completion to the owner only, not to another user's socket", async () => {
    const [alice, bob] = await Promise.all([
      createUser(gw.app.getHttpServer(), `alice_${world.id}`),
      createUser(gw.app.getHttpServer(), `bob_${world.id}`),
    ]);
    const aliceSocket = connect(gw.url, { Origin: 'http://tess.test', Cookie: await login(alice) });
    const bobCookie = await login(bob);
    const bobSocket = connect(gw.url, { Origin: 'http://tess.test', Cookie: bobCookie });
    await Promise.all([connected(aliceSocket), connected(bobSocket)]);
    const aliceEvents: { event: string; payload: { fileId: string } }[] = [];
    const bobEvents: unknown[] = [];
    for (const event of ['file:created', 'job:progress', 'job:completed', 'job:failed'] as const) {
      aliceSocket.on(event, (payload: { fileId: string }) => aliceEvents.push({ event, payload }));
      bobSocket.on(event, (payload: unknown) => bobEvents.push(payload));
    }
    const up = await request(gw.url)
      .post('/api/v1/uploads')
      .set(alice.auth)
      .attach('file', bytesOf(3 * 1024 * 1024), 'a.bin');
    const fileId = up.body.files[0].id as string;
    await world.startInProcessWorker();
    expect((await waitForStatus(world, fileId, 'stored')).status).toBe('stored');
    const deadline = Date.now() + 10_000;
    while (!aliceEvents.some((e) => e.event === 'job:completed') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const file = (await gw.app.get(FileRepository).findById(fileId))!;
    // The new row comes first, while the file is still queued (no worker ran yet when it was sent).
    expect(aliceEvents[0]).toEqual({
      event: 'file:created',
      payload: { fileId, filename: 'a.bin', size: 3 * 1024 * 1024 },
    });
    expect(aliceEvents.filter((e) => e.event === 'file:created')).toHaveLength(1);
    const completed = aliceEvents.find((e) => e.event === 'job:completed');
    expect(completed?.payload).toEqual({
      jobId: fileId,
      fileId,
      sha1: file.sha1,
      sha256: file.sha256,
      size: file.size,
    });
    const progress = aliceEvents.filter((e) => e.event === 'job:progress').map((e) => e.payload);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[0]).toMatchObject({ jobId: fileId, fileId, bytesTotal: 3 * 1024 * 1024 });
    // The owner id routes events between processes; sockets never see it.
    for (const payload of progress) expect(payload).not.toHaveProperty('ownerId');
    expect(bobEvents).toEqual([]);
  });

  it('disconnects the sockets of a session when it logs out', async () => {
    const user = await createUser(gw.app.getHttpServer(), `leaver_${world.id}`);
    const cookie = await login(user);
    const socket = connect(gw.url, { Origin: 'http://tess.test', Cookie: cookie });
    await connected(socket);
    const home = await request(gw.url).get('/home').set('Cookie', cookie).expect(200);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(home.text)![1];
    const gone = new Promise<string>((resolve) => socket.once('disconnect', (reason) => resolve(reason)));
    await request(gw.url)
      .post('/logout')
      .set('Cookie', cookie)
      .type('form')
      .send({ _csrf: csrf })
      .expect(303);
    expect(await gone).toBe('io server disconnect');
    await refused(connect(gw.url, { Origin: 'http://tess.test', Cookie: cookie }));
  });
});

describe('Socket.IO and session expiry', () => {
  let short: World;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** Resolves with the time the socket was disconnected by the server, or rejects after `ms`. */
  function disconnectedWithin(socket: ClientSocket, ms: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`still connected after ${ms} ms`)), ms);
      socket.once('disconnect', (reason) => {
        clearTimeout(timer);
        if (reason === 'io server disconnect') resolve(Date.now());
        else reject(new Error(`disconnected by ${reason}`));
      });
    });
  }

  beforeAll(async () => {
    short = await createWorld({
      env: { ALLOWED_ORIGINS: 'http://tess.test', SESSION_IDLE_TIMEOUT: '2', SESSION_ABSOLUTE_TIMEOUT: '4' },
    });
  });

  afterAll(async () => {
    await short?.close();
  });

  async function loginShort(user: TestUser): Promise<{ cookie: string; at: number }> {
    const page = await request(short.base).get('/login');
    const res = await request(short.base)
      .post('/login')
      .set('Cookie', formCookie(page)!)
      .type('form')
      .send({
        username: user.username,
        password: TEST_PASSWORD,
        _csrf: /name="_csrf" value="([^"]+)"/.exec(page.text)![1],
      })
      .expect(303);
    return { cookie: sessionCookie(res)!, at: Date.now() };
  }

  it('disconnects a socket when its session expires idle', async () => {
    const user = await createUser(short.server, `idle_${short.id}`);
    const { cookie, at } = await loginShort(user);
    const socket = connect(short.base, { Origin: 'http://tess.test', Cookie: cookie });
    await connected(socket);
    const gone = await disconnectedWithin(socket, 6_000);
    // Idle timeout 2 s; the check runs every idle/4.
    expect(gone - at).toBeLessThan(2_000 + 1_500);
    await request(short.base).get('/home').set('Cookie', cookie).expect(303);
    await refused(connect(short.base, { Origin: 'http://tess.test', Cookie: cookie }));
  });

  it('disconnects a busy session at the absolute timeout and relays no job event after it', async () => {
    const user = await createUser(short.server, `abs_${short.id}`);
    const { cookie, at } = await loginShort(user);
    const socket = connect(short.base, { Origin: 'http://tess.test', Cookie: cookie });
    await connected(socket);
    const events: string[] = [];
    for (const event of ['file:created', 'job:progress', 'job:completed', 'job:failed'] as const) {
      socket.on(event, () => events.push(event));
    }
    const gone = disconnectedWithin(socket, 8_000);
    let ended = false;
    const end = () => {
      ended = true;
    };
    gone.then(end, end);
    // HTTP activity keeps the idle timeout from ever firing; only the absolute one can end it.
    while (!ended && Date.now() - at < 8_000) {
      await request(short.base).get('/home').set('Cookie', cookie);
      await sleep(400);
    }
    const goneAt = await gone;
    expect(goneAt - at).toBeGreaterThanOrEqual(4_000 - 100);
    expect(goneAt - at).toBeLessThan(4_000 + 1_500);
    const up = await request(short.base)
      .post('/api/v1/uploads')
      .set(user.auth)
      .attach('file', bytesOf(256 * 1024), 'late.bin')
      .expect(202);
    const fileId = up.body.files[0].id as string;
    await short.startInProcessWorker();
    expect((await waitForStatus(short, fileId, 'stored')).status).toBe('stored');
    await sleep(500);
    expect(events).toEqual([]);
  });
});
