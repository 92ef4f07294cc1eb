import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditCount,
  tempFiles,
  upload,
  waitForJob,
  waitForStatus,
  waitForStored,
} from '../support/client.js';
import { postMultipart } from '../support/multipart.js';
import { objectExists } from '../support/objects.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * The type check in the worker's pass and at the gateway (docs/security.md, content checks): the worker
 * sniffs the real bytes and applies the policy; the gateway refuses obviously blocked names and declared
 * types with 415 before anything is stored.
 */

/** A minimal PE file start: the MZ header, as Windows executables begin. */
const PE = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(510, 0x90)]);
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000a49444154789c6300010000050001',
  'hex',
);
const PDF = Buffer.from('%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n');

let strict: World;
let images: World;
let alice: TestUser;
let bob: TestUser;

/**
 * One world at a time: each describe below opens its own. (With two in-process gateways open at once, the
 * first one's API tokens answered 401 after the second started; seen here, not investigated.)
 */
function strictWorld() {
  beforeAll(async () => {
    strict = await createWorld({ workers: 'in-process', env: { TYPE_MISMATCH: 'reject' } });
    alice = await createUser(strict.server, `alice_${strict.id}`);
  });
  afterAll(async () => {
    await strict?.close();
  });
}

function imagesWorld() {
  beforeAll(async () => {
    images = await createWorld({
      workers: 'in-process',
      env: { ALLOWED_TYPES: 'image/*', BLOCK_ACTIVE_CONTENT: 'true', TYPE_MISMATCH: 'flag' },
    });
    bob = await createUser(images.server, `bob_${images.id}`);
  });
  afterAll(async () => {
    await images?.close();
  });
}

async function expectRejected(world: World, id: string, message: string | RegExp) {
  const row = await waitForStatus(world, id, 'rejected');
  await waitForJob(world, id, 'failed');
  expect(row.error).toMatch(message);
  expect(await objectExists(world, id)).toBe(false);
  expect(await tempFiles(world.config)).not.toContain(id);
  expect(await auditCount(world, id, 'file.rejected')).toBe(1);
  return row;
}

describe('the worker decides on the content (defaults, TYPE_MISMATCH=reject)', { timeout: 60_000 }, () => {
  strictWorld();
  it('a PE executable named invoice.pdf is rejected: its content is a blocked type', async () => {
    const [file] = await upload(strict, alice, [
      { filename: 'invoice.pdf', contentType: 'application/pdf', body: PE },
    ]);
    const row = await expectRejected(
      strict,
      file!.id,
      '"invoice.pdf" was refused: its content is application/x-msdownload, which is blocked (BLOCKED_TYPES: application/x-msdownload); nothing was stored.',
    );
    expect(row.detectedType).toBe('application/x-msdownload');
    const [event] = await strict.dataSource.query(
      `SELECT details FROM audit_events WHERE file_id = $1 AND action = 'file.rejected'`,
      [file!.id],
    );
    expect(event.details).toMatchObject({ rule: 'blocked-type', detectedType: 'application/x-msdownload' });
  });

  it('TYPE_MISMATCH=reject: a PNG named report.pdf is rejected as a mismatch', async () => {
    const [file] = await upload(strict, alice, [{ filename: 'report.pdf', body: PNG }]);
    await expectRejected(
      strict,
      file!.id,
      '"report.pdf" was refused: the name says .pdf (application/pdf) but the content is image/png (TYPE_MISMATCH=reject); nothing was stored.',
    );
  });

  it('a PNG named .png, an empty file, a text file, CSV and JSON are stored with their detected types', async () => {
    const files = await upload(strict, alice, [
      { filename: 'pixel.png', contentType: 'image/png', body: PNG },
      { filename: 'empty.dat', body: Buffer.alloc(0) },
      {
        filename: 'notes.txt',
        contentType: 'text/plain',
        body: Buffer.from('Just some notes.\nSecond line.\n'),
      },
      { filename: 'table.csv', contentType: 'text/csv', body: Buffer.from('a,b,c\n1,2,3\n4,5,6\n') },
      { filename: 'data.json', contentType: 'application/json', body: Buffer.from('{"ok": true}') },
    ]);
    const rows = await Promise.all(files.map((f) => waitForStored(strict, f.id)));
    expect(rows.map((r) => r.detectedType)).toEqual([
      'image/png',
      'application/x-empty',
      'text/plain',
      'text/csv',
      'application/json',
    ]);
    const api = await fetch(`${strict.base}/api/v1/files/${files[0]!.id}`, { headers: alice.auth });
    expect(await api.json()).toMatchObject({
      contentType: 'image/png',
      detectedType: 'image/png',
      status: 'stored',
    });
  });
});

describe('ALLOWED_TYPES=image/*, BLOCK_ACTIVE_CONTENT=true, TYPE_MISMATCH=flag', { timeout: 60_000 }, () => {
  imagesWorld();

  it('ALLOWED_TYPES=image/* rejects a PDF at the worker (declared as generic bytes, so the gateway let it through)', async () => {
    const [file] = await upload(images, bob, [{ filename: 'paper.pdf', body: PDF }]);
    const row = await expectRejected(
      images,
      file!.id,
      '"paper.pdf" was refused: its content is application/pdf, which is not allowed (ALLOWED_TYPES: image/*); nothing was stored.',
    );
    expect(row.detectedType).toBe('application/pdf');
  });

  it('BLOCK_ACTIVE_CONTENT: an SVG with script is rejected, also when the script comes after the first 64 KiB; a plain SVG is stored', async () => {
    const scripted = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    const late = Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg"><desc>${'x'.repeat(3 * 1024 * 1024)}</desc><a href="javascript:alert(1)"/></svg>`,
    );
    const plain = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><circle r="1"/></svg>');
    const files = await upload(images, bob, [
      { filename: 'a.svg', contentType: 'image/svg+xml', body: scripted },
      { filename: 'b.svg', contentType: 'image/svg+xml', body: late },
      { filename: 'c.svg', contentType: 'image/svg+xml', body: plain },
    ]);
    await expectRejected(
      images,
      files[0]!.id,
      /^"a\.svg" was refused: it is image\/svg\+xml with script in it/,
    );
    await expectRejected(
      images,
      files[1]!.id,
      /^"b\.svg" was refused: it is image\/svg\+xml with script in it/,
    );
    const stored = await waitForStored(images, files[2]!.id);
    expect(stored.detectedType).toBe('image/svg+xml');
  });

  it('TYPE_MISMATCH=flag stores a PNG named photo.jpg with a warning the API shows', async () => {
    const [file] = await upload(images, bob, [
      { filename: 'photo.jpg', contentType: 'image/jpeg', body: PNG },
    ]);
    const row = await waitForStored(images, file!.id);
    expect(row.typeWarning).toBe('the name says .jpg (image/jpeg) but the content is image/png');
    const api = await fetch(`${images.base}/api/v1/files/${file!.id}`, { headers: bob.auth });
    expect(await api.json()).toMatchObject({ detectedType: 'image/png', typeWarning: row.typeWarning });
  });
});

async function refused(world: World, user: TestUser, filename: string, contentType: string) {
  const before = await tempFiles(world.config);
  const res = await postMultipart(
    `${world.base}/api/v1/uploads`,
    [
      { filename: 'fine.png', contentType: 'image/png', body: PNG },
      { filename, contentType, body: Buffer.from('whatever') },
    ],
    { headers: user.auth },
  );
  expect(res.status).toBe(415);
  const { items } = (await (await fetch(`${world.base}/api/v1/files`, { headers: user.auth })).json()) as {
    items: Array<{ filename: string }>;
  };
  expect(items.map((f) => f.filename)).not.toContain('fine.png');
  expect(await tempFiles(world.config)).toEqual(before);
  return JSON.parse(res.body) as { statusCode: number; message: string };
}

describe('the gateway refuses blocked names before storing anything (defaults)', { timeout: 30_000 }, () => {
  strictWorld();

  it('a name with a blocked extension: 415 naming the rule, and the other file of the request is not kept either', async () => {
    const body = await refused(strict, alice, 'setup.exe', 'application/octet-stream');
    expect(body).toMatchObject({
      statusCode: 415,
      message: '"setup.exe" was refused: files named .exe are blocked (BLOCKED_TYPES); nothing was stored.',
    });
  });
});

describe('the gateway refuses declared types ALLOWED_TYPES leaves out', { timeout: 30_000 }, () => {
  imagesWorld();

  it('ALLOWED_TYPES=image/*: a declared application/x-msdownload is refused with 415', async () => {
    const body = await refused(images, bob, 'tool.bin', 'application/x-msdownload');
    expect(body.message).toBe(
      '"tool.bin" was refused: its declared type application/x-msdownload, which is blocked (BLOCKED_TYPES: application/x-msdownload); nothing was stored.',
    );
    const other = await refused(images, bob, 'paper.pdf', 'application/pdf');
    expect(other.message).toBe(
      '"paper.pdf" was refused: its declared type application/pdf, which is not allowed (ALLOWED_TYPES: image/*); nothing was stored.',
    );
  });
});
