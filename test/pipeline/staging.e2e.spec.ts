import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { open, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverLength, scanStaging } from '#common';
import { TempSweeperService } from '../../apps/gateway/src/uploads/temp-sweeper.service.js';
import { MiB, sha256 } from '../support/bytes.js';
import {
  auditCount,
  tempFiles,
  upload,
  userId,
  waitFor,
  waitForJob,
  waitForStatus,
} from '../support/client.js';
import { listObjects, objectExists } from '../support/objects.js';
import { killAllProcesses, type TestProcess } from '../support/processes.js';
import { decryptStaged, isOpaque, rawStaged, stagedPath } from '../support/staging.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type StoreKind, type World } from '../support/world.js';

/**
 * Encrypted staging (docs/format.md "Staging format"): what sits on the temp volume between the upload and
 * the worker is authenticated ciphertext, and the worker refuses staged bytes that were tampered with.
 */

const HEADER = 65;
const RECORD = MiB;
const FRAME = 5 + RECORD + 16;
/** Four full records and a short one, then the seal. */
const SIZE = 4 * RECORD + 1000;

/** A known 64-byte marker repeated through the file: any plaintext on disk would contain it. */
function markerBody(size: number): { marker: Buffer; body: Buffer } {
  const marker = Buffer.from(`TESS-PLAINTEXT-MARKER-${randomBytes(21).toString('hex')}`.slice(0, 64));
  const body = Buffer.alloc(size);
  for (let at = 0; at < size; at += marker.length) marker.copy(body, at);
  return { marker, body };
}

type Tamper = (bytes: Buffer, other: Buffer) => Buffer;

/** Ways to change a staged file; each must be detected before anything is stored. */
const TAMPERS: Array<[string, Tamper]> = [
  [
    'a flipped ciphertext bit in record 2',
    (b) => {
      const out = Buffer.from(b);
      out[HEADER + 2 * FRAME + 5 + 123]! ^= 0x10;
      return out;
    },
  ],
  ['the seal cut off (truncated)', (b) => b.subarray(0, b.length - (5 + 8 + 16))],
  [
    'a whole data record cut out',
    (b) => Buffer.concat([b.subarray(0, HEADER + FRAME), b.subarray(HEADER + 2 * FRAME)]),
  ],
  ['bytes appended after the seal (extended)', (b) => Buffer.concat([b, randomBytes(100)])],
  [
    'records 0 and 1 swapped (reordered)',
    (b) =>
      Buffer.concat([
        b.subarray(0, HEADER),
        b.subarray(HEADER + FRAME, HEADER + 2 * FRAME),
        b.subarray(HEADER, HEADER + FRAME),
        b.subarray(HEADER + 2 * FRAME),
      ]),
  ],
  [
    "record 1 replaced by another upload's record 1 (spliced)",
    (b, other) =>
      Buffer.concat([
        b.subarray(0, HEADER + FRAME),
        other.subarray(HEADER + FRAME, HEADER + 2 * FRAME),
        b.subarray(HEADER + 2 * FRAME),
      ]),
  ],
  ['the whole file replaced by another upload (file id)', (_b, other) => other],
  [
    'the header edited (record size)',
    (b) => {
      const out = Buffer.from(b);
      out.writeUInt32BE(RECORD / 2, 6);
      return out;
    },
  ],
];

describe.each<StoreKind>(['local', 's3'])('encrypted staging with the %s store', (kind) => {
  let world: World;
  let alice: TestUser;
  let worker: TestProcess | undefined;

  beforeAll(async () => {
    world = await createWorld({ store: kind });
    alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await worker?.stop();
    await killAllProcesses();
    await world?.close();
  });

  it('keeps no plaintext byte on the temp volume while a file waits for a worker (API and dashboard session)', async () => {
    const { marker, body } = markerBody(3 * MiB + 17);
    const [viaToken] = await upload(world, alice, [{ filename: 'marker.bin', body }]);
    const viaSession = await alice.agent
      .post('/api/v1/uploads')
      .set('X-CSRF-Token', alice.csrf)
      .attach('file', body, 'marker-session.bin')
      .expect(202);
    const ids = [viaToken!.id, viaSession.body.files[0].id as string];
    expect((statSync(world.config.tempDir).mode & 0o777).toString(8)).toBe('700');
    for (const id of ids) {
      const row = (await world.files.findById(id))!;
      expect(row.status).toBe('queued');
      const raw = await rawStaged(world.config, id);
      expect(isOpaque(raw, marker)).toBe(true);
      // Not even a 16-byte piece of the marker survives anywhere in the file.
      expect(raw.indexOf(marker.subarray(24, 40))).toBe(-1);
      expect((await stat(stagedPath(world.config, id))).mode & 0o777).toBe(0o600);
      expect(await recoverLength(stagedPath(world.config, id))).toBe(body.length);
      expect(sha256(await decryptStaged(world.config, row))).toBe(sha256(body));
    }

    worker = await world.startWorker();
    for (const id of ids) {
      await waitForJob(world, id, 'completed', { workers: [worker] });
      expect((await world.files.findById(id))!.sha256).toBe(sha256(body));
    }
    expect(await tempFiles(world.config)).toEqual([]);
    await worker.stop();
    worker = undefined;
  });

  it('fails every tampered staged file with staging-integrity, stores nothing and audits it; an untouched one is stored', async () => {
    const owner = await userId(world, alice);
    const bodies = TAMPERS.map(() => randomBytes(SIZE));
    const control = randomBytes(SIZE);
    const donor = randomBytes(SIZE);
    const files = await upload(world, alice, [
      ...bodies.map((body, i) => ({ filename: `tampered-${i}.bin`, body })),
      { filename: 'control.bin', body: control },
      { filename: 'donor.bin', body: donor },
    ]);
    const donorId = files.at(-1)!.id;
    const donorBytes = await rawStaged(world.config, donorId);
    for (const [i, [, tamper]] of TAMPERS.entries()) {
      const id = files[i]!.id;
      await writeFile(stagedPath(world.config, id), tamper(await rawStaged(world.config, id), donorBytes));
    }
    const before = await listObjects(world);

    worker = await world.startWorker();
    for (const [i, [label]] of TAMPERS.entries()) {
      const id = files[i]!.id;
      const row = await waitForStatus(world, id, 'failed', { workers: [worker] });
      await waitForJob(world, id, 'failed', { workers: [worker] });
      expect({ label, error: row.error, attempts: row.attempts }).toMatchObject({
        label,
        error: expect.stringMatching(/^staging-integrity: .*nothing was stored/),
      });
      expect({ label, object: await objectExists(world, id) }).toEqual({ label, object: false });
      expect(await auditCount(world, id, 'file.failed')).toBe(1);
      const [event] = await world.dataSource.query(
        "SELECT user_id, details FROM audit_events WHERE file_id = $1 AND action = 'file.failed'",
        [id],
      );
      expect(event).toMatchObject({ user_id: owner, details: { reason: 'staging-integrity' } });
      // Permanent: one attempt, no retry reading the same bytes again.
      const job = await world.queue.getJob(id);
      expect({ label, attemptsMade: job?.attemptsMade }).toEqual({ label, attemptsMade: 1 });
    }
    for (const [id, body] of [
      [files.at(-2)!.id, control],
      [donorId, donor],
    ] as const) {
      await waitForJob(world, id, 'completed', { workers: [worker] });
      expect((await world.files.findById(id))!.sha256).toBe(sha256(body));
    }
    expect((await listObjects(world)).filter((key) => !before.includes(key))).toHaveLength(2);
    expect(await tempFiles(world.config)).toEqual([]);
    await worker.stop();
    worker = undefined;
  });
});

describe('a gateway killed mid-upload', () => {
  let world: World;

  beforeAll(async () => {
    world = await createWorld({ gateway: 'process', workers: 1 });
  }, 60_000);

  afterAll(async () => {
    await killAllProcesses();
    await world?.close();
  });

  it('leaves a partial staging file that no worker processes and the sweeper removes', async () => {
    const user = await createUser(world.base, `kill_${world.id}`);
    const boundary = `----tess${randomBytes(8).toString('hex')}`;
    const req = http.request(`${world.base}/api/v1/uploads`, {
      method: 'POST',
      headers: {
        ...user.auth,
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Transfer-Encoding': 'chunked',
      },
    });
    req.on('error', () => undefined);
    req.write(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    req.write(randomBytes(3 * MiB + 100));
    // The request stays open: wait until records are on disk, then kill the gateway without warning.
    const name = await waitFor(
      'a staging file with records',
      async () => {
        const [first] = await tempFiles(world.config);
        if (!first) return undefined;
        return (await recoverLength(stagedPath(world.config, first))) >= 3 * MiB ? first : undefined;
      },
      { timeoutMs: 20_000 },
    );
    world.gatewayProcesses[0]!.signal('SIGKILL');
    await world.gatewayProcesses[0]!.exited;
    req.destroy();

    // Nothing refers to it: no row, no job, and the file itself is not sealed, so it could not be read.
    expect(await world.files.findById(name)).toBeNull();
    expect(await world.queue.getJob(name)).toBeUndefined();
    const handle = await open(stagedPath(world.config, name), 'r');
    try {
      const layout = await scanStaging(handle);
      expect(layout).toMatchObject({ sealOffset: null });
      expect(layout.dataLength).toBeGreaterThanOrEqual(3 * MiB);
    } finally {
      await handle.close();
    }
    // A worker would never process it: a worker runs, and after a while it is still untouched.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await tempFiles(world.config)).toEqual([name]);

    const sweeper = new TempSweeperService({ ...world.config, tempMaxAgeMs: 0 }, world.files);
    expect(await sweeper.sweep(Date.now() + 1)).toEqual([name]);
    expect(await tempFiles(world.config)).toEqual([]);
    expect(await listObjects(world)).toEqual([]);
  });
});
