import { parse as parseContentDisposition } from 'content-disposition';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadContent, type UploadedFile, upload, waitForStored } from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * File names round-trip: what a browser or fetch client (undici) sends, with `"`, CR and LF encoded as
 * `%22`, `%0D`, `%0A` per WHATWG form-data encoding, or what curl sends, is the name the 202 answer,
 * the file, the list and the download's Content-Disposition all carry (within the sanitisation of
 * docs/security.md item 2).
 */

describe('file names through the API', () => {
  let world: World;
  let alice: TestUser;

  beforeAll(async () => {
    world = await createWorld({ workers: 'in-process' });
    alice = await createUser(world.server, `alice_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  /** Uploads through fetch's FormData, which encodes the name as browsers do. */
  async function fetchUpload(name: string): Promise<UploadedFile> {
    const form = new FormData();
    form.append('file', new Blob([`content of ${name}`]), name);
    const res = await fetch(`${world.base}/api/v1/uploads`, {
      method: 'POST',
      headers: alice.auth,
      body: form,
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { files: UploadedFile[] }).files[0]!;
  }

  async function expectEverywhere(file: UploadedFile, name: string): Promise<void> {
    expect(file.filename).toBe(name);
    await waitForStored(world, file.id);
    const one = await fetch(`${world.base}/api/v1/files/${file.id}`, { headers: alice.auth });
    expect(((await one.json()) as { filename: string }).filename).toBe(name);
    const list = await fetch(`${world.base}/api/v1/files?limit=100`, { headers: alice.auth });
    const items = ((await list.json()) as { items: { id: string; filename: string }[] }).items;
    expect(items.find((f) => f.id === file.id)?.filename).toBe(name);
    const download = await downloadContent(world, alice, file.id);
    expect(download.status).toBe(200);
    const disposition = parseContentDisposition(String(download.headers['content-disposition']));
    expect(disposition.type).toBe('attachment');
    expect(disposition.parameters.filename).toBe(name);
  }

  it.each([
    ['Quarterly "final" report.txt', 'Quarterly "final" report.txt'],
    ['"quoted".txt', '"quoted".txt'],
    ['line\r\nbreak.txt', 'linebreak.txt'],
    ['50% off %20 sale.txt', '50% off %20 sale.txt'],
    ['résumé (final) <b>x</b>.pdf', 'b>.pdf'],
  ])('a fetch/browser upload of %j is stored and served as %j', async (sent, stored) => {
    await expectEverywhere(await fetchUpload(sent), stored);
  });

  it('a curl-style upload (the quote sent as %22 in the raw header) keeps the quotes', async () => {
    // Names are unique per folder: the fetch upload of the same name above would make this one "(2)".
    const list = await fetch(`${world.base}/api/v1/files?limit=100&q=quarterly`, { headers: alice.auth });
    for (const f of ((await list.json()) as { items: { id: string }[] }).items) {
      await fetch(`${world.base}/api/v1/files/${f.id}`, { method: 'DELETE', headers: alice.auth });
    }
    const [file] = await upload(world, alice, [
      { filename: 'Quarterly %22final%22 report.txt', body: Buffer.from('from curl') },
    ]);
    await expectEverywhere(file!, 'Quarterly "final" report.txt');
  });
});
