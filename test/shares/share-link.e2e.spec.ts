import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ShareRepository } from '#common';
import { Clock } from '../../apps/gateway/src/shares/clock.js';
import { MiB, sha256 } from '../support/bytes.js';
import { auditCount, rawRequest, upload, waitFor, waitForStored } from '../support/client.js';
import { csrfFrom, formCookie } from '../support/http.js';
import { headerLength, readObject, SEGMENT, writeObject } from '../support/objects.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * The public side of share links, without any session: GET /s/:token (page), POST /s/:token
 * (password), GET /s/:token/content (the verified download through the share principal). Counting,
 * passwords, expiry on a moved clock, throttles and audit (docs/security.md 31a-31l).
 */

let world: World;
let alice: TestUser;
let small: { id: string; data: Buffer };
let big: { id: string; data: Buffer };

interface Created {
  id: string;
  url: string;
  token: string;
  path: string;
}

beforeAll(async () => {
  world = await createWorld({ workers: 'in-process' });
  alice = await createUser(world.server, `alice_${world.id}`);
  const smallData = randomBytes(70_000);
  const bigData = randomBytes(6 * MiB + 123);
  const [a, b] = await upload(world, alice, [
    { filename: 'small report.pdf', body: smallData, contentType: 'application/pdf' },
    { filename: 'big.bin', body: bigData },
  ]);
  small = { id: a!.id, data: smallData };
  big = { id: b!.id, data: bigData };
  await waitForStored(world, small.id);
  await waitForStored(world, big.id);
}, 120_000);

afterAll(async () => {
  await world?.close();
});

async function share(fileId: string, body: object = {}): Promise<Created> {
  const res = await request(world.server)
    .post(`/api/v1/files/${fileId}/shares`)
    .set(alice.auth)
    .send(body)
    .expect(201);
  const token = (res.body.url as string).split('/s/')[1]!;
  return { id: res.body.id, url: res.body.url, token, path: `/s/${token}` };
}

function content(link: Created, headers: Record<string, string> = {}) {
  return rawRequest(`${world.base}${link.path}/content`, { headers });
}

function setCookies(res: request.Response): string[] {
  return (res.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
}

async function row(link: Created) {
  return (await world.app.get(ShareRepository).findById(link.id))!;
}

/** Starts a download and cuts it after the first body bytes arrived; resolves once the socket is gone. */
function abortedDownload(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let got = 0;
      res.on('data', (chunk: Buffer) => {
        got += chunk.length;
        req.destroy();
      });
      res.on('close', () => resolve(got));
    });
    req.on('error', (e) =>
      e.message.includes('socket hang up') || e.message.includes('aborted') ? undefined : reject(e),
    );
    req.on('close', () => resolve(0));
  });
}

describe('the link page and download', () => {
  it('shows the file without a session, with no-referrer, no-store and noindex, and a CSP', async () => {
    const link = await share(small.id);
    const res = await request(world.server).get(link.path).expect(200);
    expect(setCookies(res).some((c) => c.startsWith('tess.sid='))).not.toBe(true);
    expect(res.text).toContain('small report.pdf');
    expect(res.text).toContain(sha256(small.data));
    expect(res.text).toContain('68 KiB');
    expect(res.text).toContain(alice.username);
    expect(res.text).toContain(`href="${link.path}/content"`);
    expect(res.text).not.toMatch(/<script(?![^>]*src=)/);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('private, no-store');
    expect(res.headers['x-robots-tag']).toBe('noindex, nofollow');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(await auditCount(world, small.id, 'share.viewed')).toBeGreaterThanOrEqual(1);
  });

  it('downloads the verified plaintext as an attachment, counts it and audits it with address and bytes', async () => {
    const link = await share(small.id);
    const res = await content(link);
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.sha256).toBe(sha256(small.data));
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="small report.pdf"/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers.etag).toBe(`"sha256-${sha256(small.data)}"`);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('private, no-store');
    await waitFor('the count', async () => (await row(link)).downloads === 1);
    expect((await row(link)).lastDownloadAt).not.toBeNull();
    const events: Array<{ ip: string; details: Record<string, unknown> }> = await world.dataSource.query(
      "SELECT ip, details FROM audit_events WHERE action = 'share.downloaded' AND details->>'shareId' = $1",
      [link.id],
    );
    expect(events).toHaveLength(1);
    expect(events[0]!.ip).toMatch(/127\.0\.0\.1/);
    expect(events[0]!.details).toMatchObject({ bytes: small.data.length, downloads: 1 });
    const listed = await request(world.server).get(`/api/v1/files/${small.id}/shares`).set(alice.auth);
    expect(listed.body.items.find((s: { id: string }) => s.id === link.id)).toMatchObject({ downloads: 1 });
    // The owner's Activity page shows it.
    const activity = await alice.agent.get('/activity').expect(200);
    expect(activity.text).toContain('Downloaded through a share link');
    expect(activity.text).toContain('Share link opened');
  });

  it('answers 404 for unknown or malformed tokens, and 410 pages that name nothing of the file', async () => {
    const unknown = `/s/${'A'.repeat(43)}`;
    for (const path of [unknown, '/s/short', `${unknown}/content`]) {
      const res = await request(world.server).get(path).expect(404);
      expect(res.text).toContain('No such link');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
    }
    const link = await share(small.id);
    await request(world.server).delete(`/api/v1/shares/${link.id}`).set(alice.auth).expect(204);
    for (const path of [link.path, `${link.path}/content`]) {
      const res = await request(world.server).get(path).expect(410);
      expect(res.text).toContain('This link was revoked');
      expect(res.text).not.toContain('small report.pdf');
      expect(res.text).not.toContain(sha256(small.data));
    }
    const json = await request(world.server).get(`${link.path}/content`).set('Accept', 'application/json');
    expect(json.status).toBe(410);
    expect(json.body).toMatchObject({ statusCode: 410, message: expect.stringContaining('switched it off') });
  });

  it('expires on the clock: 410 once expiresAt has passed', async () => {
    const link = await share(small.id, { expiresIn: '1h' });
    await request(world.server).get(link.path).expect(200);
    const clock = world.app.get(Clock);
    const spy = vi.spyOn(clock, 'now').mockReturnValue(new Date(Date.now() + 3_600_000 + 1000));
    try {
      const res = await request(world.server).get(link.path).expect(410);
      expect(res.text).toContain('This link has expired');
      await request(world.server).get(`${link.path}/content`).expect(410);
      const listed = await request(world.server).get(`/api/v1/files/${small.id}/shares`).set(alice.auth);
      expect(listed.body.items.find((s: { id: string }) => s.id === link.id).state).toBe('expired');
    } finally {
      spy.mockRestore();
    }
    await request(world.server).get(link.path).expect(200);
  });
});

describe('counting downloads', () => {
  it('maxDownloads 2 and three concurrent whole downloads: exactly two complete, then 410', async () => {
    const link = await share(big.id, { maxDownloads: 2 });
    const results = await Promise.all([content(link), content(link), content(link)]);
    const complete = results.filter((r) => r.status === 200 && r.complete);
    expect(complete).toHaveLength(2);
    for (const r of complete) expect(r.sha256).toBe(sha256(big.data));
    const refused = results.filter((r) => !(r.status === 200 && r.complete));
    expect(refused).toHaveLength(1);
    expect([409, 410]).toContain(refused[0]!.status);
    await waitFor('both counted', async () => (await row(link)).downloads === 2);
    const after = await content(link);
    expect(after.status).toBe(410);
    expect(after.body.toString()).toContain('This link has been used up');
    expect(await world.app.get(ShareRepository).liveLeases(link.id, new Date())).toBe(0);
  });

  it('an aborted download does not count, and the last allowed download can be retried after it', async () => {
    const link = await share(big.id, { maxDownloads: 1 });
    const got = await abortedDownload(`${world.base}${link.path}/content`);
    expect(got).toBeLessThan(big.data.length);
    await waitFor(
      'the reservation to be given back',
      async () => (await world.app.get(ShareRepository).liveLeases(link.id, new Date())) === 0,
    );
    expect((await row(link)).downloads).toBe(0);
    const retry = await content(link);
    expect(retry.status).toBe(200);
    expect(retry.sha256).toBe(sha256(big.data));
    await waitFor('the count', async () => (await row(link)).downloads === 1);
    expect((await content(link)).status).toBe(410);
    expect(await auditCount(world, big.id, 'share.downloaded')).toBeGreaterThanOrEqual(1);
  });

  it('a limited link ignores Range (whole file, Accept-Ranges: none), so a partial read cannot dodge the count', async () => {
    const link = await share(small.id, { maxDownloads: 2 });
    const res = await content(link, { Range: 'bytes=0-99' });
    expect(res.status).toBe(200);
    expect(res.headers['accept-ranges']).toBe('none');
    expect(res.headers['content-range']).toBeUndefined();
    expect(res.sha256).toBe(sha256(small.data));
    await waitFor('the count', async () => (await row(link)).downloads === 1);
  });

  it('an unlimited link serves Range as 206 and counts only whole downloads; HEAD counts nothing', async () => {
    const link = await share(small.id);
    const ranged = await content(link, { Range: 'bytes=10-19' });
    expect(ranged.status).toBe(206);
    expect(ranged.body.equals(small.data.subarray(10, 20))).toBe(true);
    const head = await rawRequest(`${world.base}${link.path}/content`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    await sleep(200);
    expect((await row(link)).downloads).toBe(0);
    const limited = await share(small.id, { maxDownloads: 1 });
    expect((await rawRequest(`${world.base}${limited.path}/content`, { method: 'HEAD' })).status).toBe(200);
    await sleep(200);
    expect((await row(limited)).downloads).toBe(0);
    expect((await content(limited)).status).toBe(200);
  });

  it('ten concurrent reservations of the last slot: exactly one gets it; revoked links give none', async () => {
    const link = await share(small.id, { maxDownloads: 1 });
    const repo = world.app.get(ShareRepository);
    const now = new Date();
    const leases = await Promise.all(
      Array.from({ length: 10 }, () => repo.reserve(link.id, now, new Date(now.getTime() + 60_000))),
    );
    expect(leases.filter(Boolean)).toHaveLength(1);
    await repo.release(leases.find(Boolean)!);
    await request(world.server).delete(`/api/v1/shares/${link.id}`).set(alice.auth).expect(204);
    expect(await repo.reserve(link.id, now, new Date(now.getTime() + 60_000))).toBeNull();
  });

  it('a crashed download slot runs out: a reservation past its lease no longer counts', async () => {
    const link = await share(small.id, { maxDownloads: 1 });
    const repo = world.app.get(ShareRepository);
    const now = new Date();
    // A gateway that reserved and died: the lease was never renewed.
    const lease = await repo.reserve(link.id, now, new Date(now.getTime() + 120_000));
    expect(lease).not.toBeNull();
    expect(await repo.reserve(link.id, now, new Date(now.getTime() + 120_000))).toBeNull();
    expect((await content(link)).status).toBe(409);
    const clock = world.app.get(Clock);
    const spy = vi.spyOn(clock, 'now').mockReturnValue(new Date(now.getTime() + 121_000));
    try {
      const res = await content(link);
      expect(res.status).toBe(200);
      expect(res.sha256).toBe(sha256(small.data));
    } finally {
      spy.mockRestore();
    }
    await waitFor('the count', async () => (await row(link)).downloads === 1);
  });
});

describe('integrity through a link', () => {
  async function tampered(name: string, at: (H: number) => number) {
    const body = randomBytes(3 * MiB);
    const [file] = await upload(world, alice, [{ filename: name, body }]);
    const row = await waitForStored(world, file!.id);
    const link = await share(file!.id, { maxDownloads: 1 });
    const object = await readObject(world, file!.id);
    const offset = at(headerLength(row));
    object[offset] = object[offset]! ^ 0x01;
    await writeObject(world, file!.id, object);
    return { id: file!.id, link, body };
  }

  it('a flipped header byte is a 502 before any header, the file turns corrupt, the link 410, nothing counted', async () => {
    const { id, link } = await tampered('bad-header.bin', (H) => H - 33);
    const res = await content(link);
    expect(res.status).toBe(502);
    expect(res.headers['content-disposition']).toBeUndefined();
    expect((await world.files.findById(id))!.status).toBe('corrupt');
    expect((await row(link)).downloads).toBe(0);
    expect(await world.app.get(ShareRepository).liveLeases(link.id, new Date())).toBe(0);
    const after = await request(world.server).get(link.path).expect(410);
    expect(after.text).toContain('The shared file is no longer available');
  });

  it('a flipped byte in a middle segment cuts the connection before the bad plaintext; it never counts', async () => {
    const { id, link, body } = await tampered('bad-middle.bin', (H) => H + SEGMENT + 500);
    const res = await content(link);
    expect(res.status).toBe(200);
    expect(res.complete).toBe(false);
    expect(res.bytes).toBeLessThan(body.length);
    await waitFor(
      'the file to be marked corrupt',
      async () => (await world.files.findById(id))!.status === 'corrupt',
    );
    await waitFor(
      'the slot to be given back',
      async () => (await world.app.get(ShareRepository).liveLeases(link.id, new Date())) === 0,
    );
    expect((await row(link)).downloads).toBe(0);
    expect(await auditCount(world, id, 'share.downloaded')).toBe(0);
    expect(await auditCount(world, id, 'file.corrupt')).toBe(1);
  });
});

describe('password-protected links', () => {
  const PASSWORD = 'the shared secret phrase';

  async function unlock(link: Created, password: string, agent = request.agent(world.server)) {
    const page = await agent.get(link.path).expect(200);
    const res = await agent
      .post(link.path)
      .type('form')
      .send({ password, _csrf: csrfFrom(page) });
    return { agent, res };
  }

  it('never serves content without the password: the content URL answers 401 with a page', async () => {
    const link = await share(small.id, { password: PASSWORD });
    const page = await request(world.server).get(link.path).expect(200);
    expect(page.text).toContain('name="password"');
    expect(page.text).not.toContain(`href="${link.path}/content"`);
    const res = await content(link);
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body.toString()).toContain('This link needs its password');
    expect(res.body.includes(small.data.subarray(0, 64))).toBe(false);
  });

  it('a wrong password is 401 and audited; the right one sets a link-bound cookie that opens the content', async () => {
    const link = await share(small.id, { password: PASSWORD });
    const wrong = await unlock(link, 'not the password');
    expect(wrong.res.status).toBe(401);
    expect(wrong.res.text).toContain('That password is not right.');
    expect(await auditCount(world, small.id, 'share.password_failed')).toBeGreaterThanOrEqual(1);

    const { agent, res } = await unlock(link, PASSWORD);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(link.path);
    const cookie = (res.headers['set-cookie'] as unknown as string[]).find((c) =>
      c.startsWith('tess.share='),
    )!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toContain(`Path=${link.path}`);
    const page = await agent.get(link.path).expect(200);
    expect(page.text).toContain(`href="${link.path}/content"`);
    const pair = cookie.split(';')[0]!;
    const served = await content(link, { Cookie: pair });
    expect(served.status).toBe(200);
    expect(served.sha256).toBe(sha256(small.data));

    // The cookie of link A does not open link B (same password, same file).
    const other = await share(small.id, { password: PASSWORD });
    const refused = await content(other, { Cookie: pair });
    expect(refused.status).toBe(401);
  });

  it('refuses the password form without its CSRF token (403)', async () => {
    const link = await share(small.id, { password: PASSWORD });
    const page = await request(world.server).get(link.path);
    const res = await request(world.server)
      .post(link.path)
      .set('Cookie', formCookie(page)!)
      .type('form')
      .send({ password: PASSWORD });
    expect(res.status).toBe(403);
    expect(setCookies(res).some((c) => c.startsWith('tess.share='))).not.toBe(true);
  });
});

describe('throttles', () => {
  let throttled: World;
  let bob: TestUser;
  let fileId: string;

  beforeAll(async () => {
    // The test client is not a trusted proxy here, so X-Forwarded-For is ignored, as on a direct deployment.
    throttled = await createWorld({
      workers: 'in-process',
      env: {
        TRUST_PROXY: '10.255.255.1',
        SHARE_MAX_FAILURES_PER_IP: '15',
        SHARE_MAX_FAILURES_PER_LINK: '10',
      },
    });
    bob = await createUser(throttled.server, `bob_${throttled.id}`);
    const [file] = await upload(throttled, bob, [{ filename: 'secret.txt', body: Buffer.from('secret') }]);
    fileId = file!.id;
    await waitForStored(throttled, fileId);
  }, 120_000);

  afterAll(async () => {
    await throttled?.close();
  });

  async function link(body: object) {
    const res = await request(throttled.server)
      .post(`/api/v1/files/${fileId}/shares`)
      .set(bob.auth)
      .send(body)
      .expect(201);
    return `/s/${(res.body.url as string).split('/s/')[1]}`;
  }

  it('10 wrong passwords for a link, from spoofed X-Forwarded-For addresses: the 11th try is 429, right or not', async () => {
    const path = await link({ password: 'right password here' });
    const agent = request.agent(throttled.server);
    const page = await agent.get(path).expect(200);
    const csrf = csrfFrom(page);
    for (let i = 0; i < 10; i++) {
      await agent
        .post(path)
        .set('X-Forwarded-For', `198.51.100.${i}`)
        .type('form')
        .send({ password: `wrong ${i}`, _csrf: csrf })
        .expect(401);
    }
    const res = await agent
      .post(path)
      .type('form')
      .send({ password: 'right password here', _csrf: csrf })
      .expect(429);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(res.text).toContain('Too many wrong passwords for this link');
    expect(setCookies(res).some((c) => c.startsWith('tess.share='))).not.toBe(true);
    expect(await auditCount(throttled, fileId, 'share.password_failed')).toBe(10);
    expect(await auditCount(throttled, fileId, 'share.throttled')).toBe(1);
  });

  it('unknown tokens use up the client address: past SHARE_MAX_FAILURES_PER_IP every link answers 429', async () => {
    const path = await link({});
    // 10 failures were spent above (one address: the spoofed header changed nothing).
    for (let i = 0; i < 5; i++) {
      await request(throttled.server)
        .get(`/s/${randomBytes(32).toString('base64url')}`)
        .set('X-Forwarded-For', `203.0.113.${i}`)
        .expect(404);
    }
    const res = await request(throttled.server).get(path).expect(429);
    expect(res.text).toContain('Too many failed attempts from your address');
    await request(throttled.server).get(`${path}/content`).expect(429);
  });
});
