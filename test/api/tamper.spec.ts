import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, type TestUser } from '../support/users.js';
import {
  downloadContent,
  headerLength,
  P,
  type RawDownload,
  readObject,
  SEGMENT,
  type StoreKind,
  sha256,
  startWorld,
  upload,
  userId,
  type World,
  waitFor,
  waitStatus,
  waitStored,
  writeObject,
} from './api.helpers.js';

/**
 * Tamper evidence through the API (docs/security.md items 25-26). Each stored object is edited behind the
 * gateway's back (local: the file under DATA_DIR/objects; s3: a PutObject straight to s3rver), or its key
 * row is swapped. Then: the download releases nothing from the bad segment onward (502 before the first
 * byte, or a cut-off response), `verify` says `ok: false`, the row is `corrupt`, a `file.corrupt` audit
 * event exists, and later downloads answer 409.
 */

// Three segments: 0 and 1 full (P plaintext bytes each), 2 holding the last 1000 bytes.
const SIZE = 2 * P + 1000;

type Expectation =
  /** The failure is detected from the header, the key or the object length: 502 before any byte. */
  | { kind: 'before-first-byte' }
  /** The failure is in segment data: nothing at or after `badOffset` (plaintext) may arrive. */
  | { kind: 'in-stream'; badOffset: number };

interface Scenario {
  name: string;
  expect: Expectation;
  tamper(ctx: { world: World; id: string; object: Buffer; H: number }): Promise<void>;
}

const flip = (object: Buffer, at: number): Buffer => {
  const copy = Buffer.from(object);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
};

const SCENARIOS: Scenario[] = [
  {
    name: 'one byte flipped in the header (nonce prefix)',
    expect: { kind: 'before-first-byte' },
    tamper: ({ world, id, object, H }) => writeObject(world, id, flip(object, H - 33)),
  },
  {
    name: 'one byte flipped in the header magic',
    expect: { kind: 'before-first-byte' },
    tamper: ({ world, id, object }) => writeObject(world, id, flip(object, 1)),
  },
  {
    name: 'one byte flipped in a middle segment',
    expect: { kind: 'in-stream', badOffset: P },
    tamper: ({ world, id, object, H }) => writeObject(world, id, flip(object, H + SEGMENT + 500)),
  },
  {
    name: 'one byte flipped in the last tag',
    expect: { kind: 'in-stream', badOffset: 2 * P },
    tamper: ({ world, id, object }) => writeObject(world, id, flip(object, object.length - 1)),
  },
  {
    name: 'truncated by one byte',
    expect: { kind: 'before-first-byte' },
    tamper: ({ world, id, object }) => writeObject(world, id, object.subarray(0, object.length - 1)),
  },
  {
    name: 'truncated by one whole segment',
    expect: { kind: 'before-first-byte' },
    tamper: ({ world, id, object }) => writeObject(world, id, object.subarray(0, object.length - SEGMENT)),
  },
  {
    name: 'the last (partial) segment dropped',
    expect: { kind: 'before-first-byte' },
    tamper: ({ world, id, object, H }) => writeObject(world, id, object.subarray(0, H + 2 * SEGMENT)),
  },
  {
    name: 'a segment appended (a copy of segment 1)',
    expect: { kind: 'before-first-byte' },
    tamper: ({ world, id, object, H }) =>
      writeObject(world, id, Buffer.concat([object, object.subarray(H + SEGMENT, H + 2 * SEGMENT)])),
  },
  {
    name: 'segments 0 and 1 swapped (same length)',
    expect: { kind: 'in-stream', badOffset: 0 },
    tamper: ({ world, id, object, H }) =>
      writeObject(
        world,
        id,
        Buffer.concat([
          object.subarray(0, H),
          object.subarray(H + SEGMENT, H + 2 * SEGMENT),
          object.subarray(H, H + SEGMENT),
          object.subarray(H + 2 * SEGMENT),
        ]),
      ),
  },
];

function expectNoBadPlaintext(res: RawDownload, expectation: Expectation, data: Buffer): void {
  // Never a complete, successful body.
  expect(res.status === 200 && res.complete).toBe(false);
  if (expectation.kind === 'before-first-byte') {
    expect(res.status).toBe(502);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(res.body.toString());
    expect(body).toMatchObject({ statusCode: 502, error: 'Bad Gateway' });
    expect(body.message).toMatch(/integrity/i);
    return;
  }
  if (res.status === 502) return;
  // Cut off: at most the authentic plaintext before the bad segment arrived, and it is the real data.
  expect(res.complete).toBe(false);
  expect(res.bytes).toBeLessThanOrEqual(expectation.badOffset);
  expect(res.body.equals(data.subarray(0, res.bytes))).toBe(true);
}

describe.each<StoreKind>(['local', 's3'])('tampered objects (%s store)', (kind) => {
  let world: World;
  let alice: TestUser;
  let bob: TestUser;
  const data = new Map<string, Buffer>();
  // scenario name / role -> file id
  const ids = new Map<string, string>();

  beforeAll(async () => {
    world = await startWorld(kind);
    alice = await createUser(world.server, `alice_${world.env.id}`);
    bob = await createUser(world.server, `bob_${world.env.id}`);
    const names = [
      ...SCENARIOS.map((s) => s.name),
      'swap:alice',
      'wrapped-key:victim',
      'wrapped-key:donor',
      'verify-first',
      'range-into-bad-segment',
      'clean',
    ];
    const bodies = names.map(() => randomBytes(SIZE));
    const accepted = await upload(
      world,
      alice,
      bodies.map((body, i) => ({ filename: `t${i}.bin`, body })),
    );
    accepted.forEach((file, i) => {
      ids.set(names[i]!, file.id);
      data.set(file.id, bodies[i]!);
    });
    const bobBody = randomBytes(SIZE);
    const [bobFile] = await upload(world, bob, [{ filename: 'bob.bin', body: bobBody }]);
    ids.set('swap:bob', bobFile!.id);
    data.set(bobFile!.id, bobBody);
    for (const id of ids.values()) await waitStored(world, id, 120_000);
  }, 240_000);

  afterAll(async () => {
    await world?.close();
  });

  async function corruptEvents(user: TestUser, fileId: string) {
    const events = await world.audit.listForUser(await userId(world, user), 1000);
    return events.filter((e) => e.action === 'file.corrupt' && e.fileId === fileId);
  }

  /** After the first detection: corrupt row, one audit event, verify ok:false, downloads 409. */
  async function expectMarkedCorrupt(user: TestUser, id: string, badOffset = SIZE): Promise<void> {
    const row = await waitStatus(world, id, 'corrupt');
    expect(row.error).toEqual(expect.any(String));
    // The audit row is written right after the status change: poll for it.
    const events = await waitFor('a file.corrupt audit event', async () => {
      const found = await corruptEvents(user, id);
      return found.length > 0 ? found : undefined;
    });
    expect(events).toHaveLength(1);
    expect(events[0]!.details).toMatchObject({ error: expect.any(String) });

    const verify = await fetch(`${world.base}/api/v1/files/${id}/verify`, {
      method: 'POST',
      headers: user.auth,
    });
    expect(verify.status).toBe(200);
    const result = (await verify.json()) as { ok: boolean; checkedBytes: number };
    expect(result.ok).toBe(false);
    expect(result.checkedBytes).toBeLessThanOrEqual(badOffset);
    // Still exactly one corrupt event: re-detection does not repeat it.
    expect(await corruptEvents(user, id)).toHaveLength(1);

    const again = await downloadContent(world, user, id);
    expect(again.status).toBe(409);
    expect(JSON.parse(again.body.toString()).message).toMatch(/failed an integrity check/);
    const ranged = await downloadContent(world, user, id, { Range: 'bytes=0-0' });
    expect(ranged.status).toBe(409);

    const view = await fetch(`${world.base}/api/v1/files/${id}`, { headers: user.auth });
    expect(await view.json()).toMatchObject({ id, status: 'corrupt', error: expect.any(String) });
  }

  async function tamperedBy(scenario: Scenario, id: string) {
    const object = await readObject(world, id);
    const row = (await world.files.findById(id))!;
    const H = headerLength(row);
    expect(object.length).toBe(row.encryptedSize);
    await scenario.tamper({ world, id, object, H });
  }

  it('an untouched object verifies: ok, every byte checked, status stays stored', async () => {
    const id = ids.get('clean')!;
    const res = await fetch(`${world.base}/api/v1/files/${id}/verify`, {
      method: 'POST',
      headers: alice.auth,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, checkedBytes: SIZE });
    expect((await world.files.findById(id))!.status).toBe('stored');
    const download = await downloadContent(world, alice, id);
    expect(download.status).toBe(200);
    expect(download.sha256).toBe(sha256(data.get(id)!));
  });

  it.each(SCENARIOS)(
    '$name: no plaintext from the bad segment on, verify ok:false, corrupt, audited, then 409',
    async (scenario) => {
      const id = ids.get(scenario.name)!;
      await tamperedBy(scenario, id);
      const res = await downloadContent(world, alice, id);
      expectNoBadPlaintext(res, scenario.expect, data.get(id)!);
      await expectMarkedCorrupt(
        alice,
        id,
        scenario.expect.kind === 'in-stream' ? scenario.expect.badOffset : 0,
      );
    },
  );

  it('verify alone detects a flipped middle segment, marks the file corrupt and audits it', async () => {
    const id = ids.get('verify-first')!;
    await tamperedBy(SCENARIOS.find((s) => s.name.includes('middle segment'))!, id);
    const res = await fetch(`${world.base}/api/v1/files/${id}/verify`, {
      method: 'POST',
      headers: alice.auth,
    });
    expect(res.status).toBe(200);
    const result = (await res.json()) as { ok: boolean; checkedBytes: number };
    expect(result.ok).toBe(false);
    expect(result.checkedBytes).toBeLessThanOrEqual(P);
    expect((await world.files.findById(id))!.status).toBe('corrupt');
    await expectMarkedCorrupt(alice, id, P);
  });

  it('a ranged read of a tampered segment releases none of it', async () => {
    const id = ids.get('range-into-bad-segment')!;
    await tamperedBy(SCENARIOS.find((s) => s.name.includes('middle segment'))!, id);
    // Segment 0 is authentic and still served exactly.
    const good = await downloadContent(world, alice, id, { Range: 'bytes=10-109' });
    expect(good.status).toBe(206);
    expect(good.body.equals(data.get(id)!.subarray(10, 110))).toBe(true);
    // Inside segment 1: nothing of it, and a clean 502 since no byte had gone out yet.
    const bad = await downloadContent(world, alice, id, { Range: `bytes=${P + 10}-${P + 109}` });
    expect(bad.status).toBe(502);
    expect(JSON.parse(bad.body.toString())).toMatchObject({ statusCode: 502, error: 'Bad Gateway' });
    await expectMarkedCorrupt(alice, id, P);
  });

  it("two users' objects swapped: both detected, each owner audited", async () => {
    const mine = ids.get('swap:alice')!;
    const theirs = ids.get('swap:bob')!;
    const a = await readObject(world, mine);
    const b = await readObject(world, theirs);
    expect(a.length).toBe(b.length);
    await writeObject(world, mine, b);
    await writeObject(world, theirs, a);
    const resA = await downloadContent(world, alice, mine);
    expectNoBadPlaintext(resA, { kind: 'before-first-byte' }, data.get(mine)!);
    await expectMarkedCorrupt(alice, mine, 0);
    // Bob's side is found by verify this time.
    const verify = await fetch(`${world.base}/api/v1/files/${theirs}/verify`, {
      method: 'POST',
      headers: bob.auth,
    });
    expect(await verify.json()).toMatchObject({ ok: false, checkedBytes: 0 });
    await expectMarkedCorrupt(bob, theirs, 0);
    // Alice's events never mention Bob's file and vice versa.
    expect(await corruptEvents(alice, theirs)).toHaveLength(0);
  });

  it("another file's wrapped key restored into the row: detected before any byte", async () => {
    const victim = ids.get('wrapped-key:victim')!;
    const donor = ids.get('wrapped-key:donor')!;
    const [before] = await world.dataSource.query('SELECT wrapped_key FROM files WHERE id = $1', [victim]);
    await world.dataSource.query(
      'UPDATE files SET wrapped_key = (SELECT wrapped_key FROM files WHERE id = $2) WHERE id = $1',
      [victim, donor],
    );
    const [after] = await world.dataSource.query('SELECT wrapped_key FROM files WHERE id = $1', [victim]);
    expect(Buffer.compare(before.wrapped_key, after.wrapped_key)).not.toBe(0);
    const res = await downloadContent(world, alice, victim);
    expectNoBadPlaintext(res, { kind: 'before-first-byte' }, data.get(victim)!);
    await expectMarkedCorrupt(alice, victim, 0);
    // The donor itself is untouched and still downloads.
    const ok = await downloadContent(world, alice, donor);
    expect(ok.status).toBe(200);
    expect(ok.sha256).toBe(sha256(data.get(donor)!));
  });
});
