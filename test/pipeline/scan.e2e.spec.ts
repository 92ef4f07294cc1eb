import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TessMetrics } from '#common';
import { HealthServer } from '../../apps/crypto-worker/src/health/health.server.js';
import { MiB, sha256 } from '../support/bytes.js';
import {
  type Clamd,
  CUSTOM_SIGNATURE_BYTES,
  EICAR,
  startClamd,
  startFailingClamd,
} from '../support/clamd.js';
import {
  auditCount,
  tempFiles,
  upload,
  waitFor,
  waitForJob,
  waitForStatus,
  waitForStored,
} from '../support/client.js';
import { objectExists } from '../support/objects.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Malware scanning in the worker's pass (SCAN_MODE=required) against a real clamd started for this file
 * with the test signature database (EICAR and a custom signature; no network): infected files end
 * `infected` with nothing stored, clean files are stored with the scanner recorded, and a scanner that is
 * down, failing or configured too small never lets a file through unscanned.
 */

let clamd: Clamd;
let world: World;
let alice: TestUser;

const scanEnv = (url: string, extra: Record<string, string> = {}) => ({
  SCAN_MODE: 'required',
  CLAMD_URL: url,
  SCAN_TIMEOUT: '10s',
  MAX_FILE_SIZE: '64MiB',
  ...extra,
});

/** The worker's tess_scan_results_total for `result`. */
async function scanCount(w: World, result: string): Promise<number> {
  const metric = await w.worker!.get(TessMetrics).registry.getSingleMetric('tess_scan_results_total')?.get();
  return metric?.values.find((v) => v.labels.result === result)?.value ?? 0;
}

async function expectNothingKept(w: World, id: string): Promise<void> {
  expect(await objectExists(w, id)).toBe(false);
  expect(await tempFiles(w.config)).not.toContain(id);
}

beforeAll(async () => {
  clamd = await startClamd({ streamMaxLength: '64M' });
  world = await createWorld({ workers: 'in-process', env: scanEnv(clamd.url) });
  alice = await createUser(world.server, `alice_${world.id}`);
});

afterAll(async () => {
  await world?.close();
  await clamd?.dispose();
});

describe('SCAN_MODE=required with clamd', { timeout: 120_000 }, () => {
  it('an EICAR file ends infected with the signature name: nothing stored, audited with the signature and ClamAV version, counted', async () => {
    const before = await scanCount(world, 'infected');
    const [file] = await upload(world, alice, [
      { filename: 'eicar.com.txt', contentType: 'text/plain', body: EICAR },
    ]);
    const row = await waitForStatus(world, file!.id, 'infected');
    await waitForJob(world, file!.id, 'failed');
    expect(row.error).toContain('Tess.Test.EICAR');
    expect(row.sha256).toBeNull();
    expect(row.objectKey).toBeNull();
    await expectNothingKept(world, file!.id);
    const [event] = await world.dataSource.query(
      `SELECT details FROM audit_events WHERE file_id = $1 AND action = 'file.infected'`,
      [file!.id],
    );
    expect(event.details).toMatchObject({ rule: 'malware', signature: 'Tess.Test.EICAR.UNOFFICIAL' });
    expect(event.details.scanner).toMatch(/^ClamAV 1\./);
    expect(await scanCount(world, 'infected')).toBe(before + 1);
    const api = await fetch(`${world.base}/api/v1/files/${file!.id}`, { headers: alice.auth });
    expect(await api.json()).toMatchObject({
      status: 'infected',
      error: expect.stringContaining('Tess.Test.EICAR'),
    });
    const job = await world.queue.getJob(file!.id);
    expect(job?.failedReason).toContain('is infected (Tess.Test.EICAR.UNOFFICIAL)');
  });

  it('EICAR in the middle of a 20 MiB file and the custom signature are found too', async () => {
    const half = randomBytes(10 * MiB);
    const big = Buffer.concat([half, EICAR, half]);
    const custom = Buffer.concat([randomBytes(300_000), CUSTOM_SIGNATURE_BYTES, randomBytes(1000)]);
    const files = await upload(world, alice, [
      { filename: 'big.bin', body: big },
      { filename: 'custom.bin', body: custom },
    ]);
    const [bigRow, customRow] = await Promise.all(files.map((f) => waitForStatus(world, f.id, 'infected')));
    for (const f of files) await waitForJob(world, f.id, 'failed');
    expect(bigRow!.error).toContain('Tess.Test.EICAR');
    expect(customRow!.error).toContain('Tess.Test.Custom');
    for (const f of files) await expectNothingKept(world, f.id);
  });

  it('a clean 50 MiB file is stored, with the scanner that passed it', async () => {
    const before = await scanCount(world, 'clean');
    const [file] = await upload(world, alice, [{ filename: 'clean.bin', body: { size: 50 * MiB } }]);
    const row = await waitForStored(world, file!.id, { timeoutMs: 90_000 });
    expect(row.size).toBe(50 * MiB);
    expect(row.scannedWith).toMatch(/^ClamAV 1\./);
    expect(row.detectedType).toBe('application/octet-stream');
    expect(await objectExists(world, file!.id)).toBe(true);
    expect(await scanCount(world, 'clean')).toBe(before + 1);
  });

  it('with clamd stopped the file waits (queued, with the reason) and is stored once clamd is back', async () => {
    await clamd.stop();
    try {
      const body = randomBytes(200_000);
      const [file] = await upload(world, alice, [{ filename: 'waits.bin', body }]);
      const waiting = await waitFor('the first failed attempt', async () => {
        const row = await world.files.findById(file!.id);
        return row?.error?.includes('malware scanner is unavailable') ? row : undefined;
      });
      expect(['queued', 'processing']).toContain(waiting.status);
      expect(await objectExists(world, file!.id)).toBe(false);
      const ready = await world.worker!.get(HealthServer).readiness();
      expect(ready.status).toBe('unavailable');
      expect(ready.checks.scanner).toMatch(/^unavailable: /);
      await clamd.start();
      const row = await waitForStored(world, file!.id, { timeoutMs: 60_000 });
      expect(row.sha256).toBe(sha256(body));
      expect(row.attempts).toBeGreaterThan(1);
    } finally {
      await clamd.start().catch(() => undefined);
    }
    expect((await world.worker!.get(HealthServer).readiness()).checks.scanner).toBe('ok');
  });
});

describe('a scanner that answers an error', { timeout: 60_000 }, () => {
  it('never stores the file: it is retried and ends failed with the reason', async () => {
    const failing = await startFailingClamd();
    const w = await createWorld({ workers: 'in-process', env: scanEnv(failing.url, { JOB_ATTEMPTS: '2' }) });
    try {
      const bob = await createUser(w.server, `bob_${w.id}`);
      const [file] = await upload(w, bob, [
        { filename: 'doc.txt', contentType: 'text/plain', body: Buffer.from('hello') },
      ]);
      const row = await waitForStatus(w, file!.id, 'failed', { timeoutMs: 30_000 });
      expect(row.error).toContain(
        "malware scanner is unavailable (clamd answered: stream: Can't allocate memory ERROR)",
      );
      expect(row.attempts).toBe(2);
      // Nothing stored; the encrypted staging file stays (until TEMP_MAX_AGE) so that an admin can retry
      // the job once the scanner works again (docs/security.md items 20, 37).
      expect(await objectExists(w, file!.id)).toBe(false);
      expect(await tempFiles(w.config)).toContain(file!.id);
      expect(await scanCount(w, 'error')).toBe(2);
    } finally {
      await w.close();
      await failing.close();
    }
  });
});

describe('clamd StreamMaxLength below MAX_FILE_SIZE', { timeout: 60_000 }, () => {
  it('makes the worker unready with a message, and a file over the limit ends rejected, not stored unscanned', async () => {
    const small = await startClamd({ streamMaxLength: '1M' });
    const w = await createWorld({
      workers: 'in-process',
      env: scanEnv(small.url, { MAX_FILE_SIZE: '4MiB' }),
    });
    try {
      const ready = await w.worker!.get(HealthServer).readiness();
      expect(ready.checks.scanner).toBe(
        `unavailable: clamd at ${small.url} scans streams smaller than MAX_FILE_SIZE (${4 * MiB} bytes): set StreamMaxLength to at least ${4 * MiB} in its clamd.conf`,
      );
      const carol = await createUser(w.server, `carol_${w.id}`);
      const files = await upload(w, carol, [
        { filename: 'over.bin', body: randomBytes(2 * MiB) },
        { filename: 'under.bin', body: randomBytes(512 * 1024) },
      ]);
      const over = await waitForStatus(w, files[0]!.id, 'rejected');
      await waitForJob(w, files[0]!.id, 'failed');
      expect(over.error).toBe(
        '"over.bin" is larger than the malware scanner accepts (clamd StreamMaxLength); it was not stored unscanned.',
      );
      await expectNothingKept(w, files[0]!.id);
      expect(await auditCount(w, files[0]!.id, 'file.rejected')).toBe(1);
      await waitForStored(w, files[1]!.id);
      expect(await scanCount(w, 'too-large')).toBe(1);
    } finally {
      await w.close();
      await small.dispose();
    }
    // A clamd whose limit covers MAX_FILE_SIZE passes the same check.
    const ready = await world.worker!.get(HealthServer).readiness();
    expect(ready.checks.scanner).toBe('ok');
  });
});
