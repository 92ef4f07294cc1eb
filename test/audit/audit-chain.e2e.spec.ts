import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuditKeyring,
  type AuditRecord,
  auditKeyringFromConfig,
  chainOf,
  GENESIS_HASH,
  LATEST_ANCHOR_KEY,
  linkHash,
  readAuditAnchor,
  verifyAuditChains,
} from '#common';
import { waitFor } from '../support/client.js';
import { AUDIT_VERIFY_ENTRY } from '../support/paths.js';
import { killAllProcesses, startProcess } from '../support/processes.js';
import { createUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * docs/security.md item 33: the audit trail is a chain of HMAC links per user (and one for events without
 * a user). Concurrent writers never fork it; `npm run audit:verify` and the Activity page find every edit,
 * deletion, reordering, forged insertion and truncation, naming the event and its time.
 */

let world: World;
let keyring: AuditKeyring;

beforeAll(async () => {
  world = await createWorld();
  keyring = auditKeyringFromConfig(world.config);
}, 60_000);

afterAll(async () => {
  await killAllProcesses();
  await keyring?.close();
  await world?.close();
});

/** A user id with `n` events in its chain (written through the repository, as the apps write them). */
async function chainWith(n: number, userId = randomUUID()): Promise<string> {
  await world.dataSource.query(
    "INSERT INTO users (id, username, email, password_hash) VALUES ($1, $2, $3, 'x')",
    [userId, `u_${userId.slice(0, 8)}`, `${userId.slice(0, 8)}@example.test`],
  );
  for (let i = 0; i < n; i++) {
    await world.audit.record({
      action: 'file.downloaded',
      userId,
      fileId: randomUUID(),
      ip: '192.0.2.7',
      details: { i },
    });
  }
  return userId;
}

async function eventAt(userId: string, seq: number): Promise<{ id: string; created_at: Date }> {
  const [row] = await world.dataSource.query(
    'SELECT id, created_at FROM audit_events WHERE chain = $1 AND seq = $2',
    [chainOf(userId), seq],
  );
  return row;
}

async function readObjectKey(key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await world.store.getRange(key, 0)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function runVerify(args: string[] = []) {
  const proc = startProcess('audit-verify', AUDIT_VERIFY_ENTRY, world.env, { args });
  return proc.waitForExit(60_000).then((status) => ({ status, output: proc.output() }));
}

describe('the audit chain', { timeout: 120_000 }, () => {
  it('never forks under concurrent writers, per user and for events without one', async () => {
    const userId = await chainWith(0);
    const records: AuditRecord[] = [
      ...Array.from({ length: 120 }, (_, i) => ({
        action: 'file.verified' as const,
        userId,
        details: { i },
      })),
      ...Array.from({ length: 40 }, (_, i) => ({
        action: 'login.failed' as const,
        ip: '198.51.100.9',
        details: { i },
      })),
    ];
    await Promise.all(records.map((r) => world.audit.record(r)));
    const rows: Array<{ seq: string }> = await world.dataSource.query(
      'SELECT seq FROM audit_events WHERE chain = $1 ORDER BY seq',
      [chainOf(userId)],
    );
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    const report = await world.audit.verify({ userId });
    expect(report).toMatchObject({ ok: true, events: 120 });
    const all = await verifyAuditChains(world.dataSource, keyring);
    expect(all.breaks).toEqual([]);
    expect(all.chains.find((c) => c.chain === 'system')?.events).toBeGreaterThanOrEqual(40);
  });

  it('reports an edited, a deleted, a reordered, a forged and a truncated event; the untouched chain verifies', async () => {
    const intact = await chainWith(10);
    const edited = await chainWith(10);
    const deleted = await chainWith(10);
    const swapped = await chainWith(10);
    const forged = await chainWith(10);
    const truncated = await chainWith(10);
    const q = (sql: string, params: unknown[]) => world.dataSource.query(sql, params);

    const editedEvent = await eventAt(edited, 4);
    await q(`UPDATE audit_events SET details = '{"i": 99}' WHERE id = $1`, [editedEvent.id]);
    await q('DELETE FROM audit_events WHERE chain = $1 AND seq = 5', [chainOf(deleted)]);
    const afterDeleted = await eventAt(deleted, 6);
    // Swap events #3 and #4 (through a free seq: the pair is unique).
    const [third, fourth] = [await eventAt(swapped, 3), await eventAt(swapped, 4)];
    await q('UPDATE audit_events SET seq = 1000 WHERE id = $1', [third.id]);
    await q('UPDATE audit_events SET seq = 3 WHERE id = $1', [fourth.id]);
    await q('UPDATE audit_events SET seq = 4 WHERE id = $1', [third.id]);
    // A forged event appended by someone with only the database: right links, head moved, no key.
    const [last] = await q('SELECT hash FROM audit_events WHERE chain = $1 AND seq = 10', [chainOf(forged)]);
    const forgedId = randomUUID();
    const content = {
      chain: chainOf(forged),
      seq: 11,
      id: forgedId,
      action: 'file.deleted',
      fileId: null,
      ip: '203.0.113.1',
      details: {},
      createdAt: new Date(),
      keyRef: (await keyring.current()).keyRef,
    };
    const guess = linkHash(Buffer.alloc(32, 7), last.hash, content);
    await q(
      `INSERT INTO audit_events (id, chain, seq, prev_hash, hash, key_ref, user_id, action, ip, details, created_at)
       VALUES ($1, $2, 11, $3, $4, $5, $6, 'file.deleted', '203.0.113.1', '{}', $7)`,
      [forgedId, content.chain, last.hash, guess, content.keyRef, forged, content.createdAt],
    );
    await q('UPDATE audit_chain_heads SET seq = 11, hash = $2 WHERE chain = $1', [content.chain, guess]);
    await q('DELETE FROM audit_events WHERE chain = $1 AND seq > 7', [chainOf(truncated)]);

    const report = await verifyAuditChains(world.dataSource, keyring);
    const byChain = new Map(report.breaks.map((b) => [b.chain, b]));
    expect(report.ok).toBe(false);
    expect(byChain.get(chainOf(intact))).toBeUndefined();
    expect(byChain.get(chainOf(edited))).toMatchObject({ kind: 'edited', seq: 4, eventId: editedEvent.id });
    expect(byChain.get(chainOf(edited))!.at!.toISOString()).toBe(editedEvent.created_at.toISOString());
    expect(byChain.get(chainOf(deleted))).toMatchObject({
      kind: 'deleted',
      seq: 6,
      eventId: afterDeleted.id,
    });
    expect(byChain.get(chainOf(swapped))).toMatchObject({ kind: 'reordered', seq: 3, eventId: fourth.id });
    expect(byChain.get(chainOf(forged))).toMatchObject({ kind: 'edited', seq: 11, eventId: forgedId });
    expect(byChain.get(chainOf(truncated))).toMatchObject({ kind: 'truncated', seq: 8 });
    expect(report.breaks).toHaveLength(5);

    // The command says the same, naming each event, and exits non-zero; one chain alone can pass.
    const all = await runVerify();
    expect(all.status.code).toBe(1);
    for (const id of [editedEvent.id, afterDeleted.id, fourth.id, forgedId]) expect(all.output).toContain(id);
    expect(all.output).toMatch(new RegExp(`BROKEN ${chainOf(truncated)}: truncated`));
    expect(all.output).toMatch(/FAILED: .* 5 broken chain\(s\)/);
    const one = await runVerify(['--chain', chainOf(intact)]);
    expect({ code: one.status.code, output: one.output }).toMatchObject({
      code: 0,
      output: expect.stringMatching(/^OK: 10 events/m),
    });
  });

  it('shows on the Activity page that the trail is verified, and the break once the chain is edited', async () => {
    const alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
    const page = await alice.agent.get('/activity').expect(200);
    expect(page.text).toMatch(/id="audit-trail"><i[^>]*><\/i> Audit trail verified up to \d{4}-\d{2}-\d{2}/);
    const [{ id }] = await world.dataSource.query(
      "SELECT e.id FROM audit_events e JOIN users u ON e.user_id = u.id WHERE u.username = $1 AND e.action = 'user.registered'",
      [alice.username],
    );
    await world.dataSource.query("UPDATE audit_events SET ip = '10.9.9.9' WHERE id = $1", [id]);
    const broken = await alice.agent.get('/activity').expect(200);
    expect(broken.text).toContain('alert-danger');
    expect(broken.text).toContain(`Audit trail broken: event ${id}`);
  });

  it('finds a tail cut together with its head row against the signed anchor a worker wrote', async () => {
    const userId = await chainWith(10);
    const chain = chainOf(userId);
    // A worker anchors at start (and every AUDIT_ANCHOR_INTERVAL).
    await world.startInProcessWorker();
    await waitFor('the first anchor', async () => {
      const anchor = await readAuditAnchor(world.store, keyring).catch(() => null);
      return anchor?.checkpoints.get(chain)?.seq === 10;
    });
    await world.stopInProcessWorker();
    const [seventh] = await world.dataSource.query(
      'SELECT hash FROM audit_events WHERE chain = $1 AND seq = 7',
      [chain],
    );
    await world.dataSource.query('DELETE FROM audit_events WHERE chain = $1 AND seq > 7', [chain]);
    await world.dataSource.query('UPDATE audit_chain_heads SET seq = 7, hash = $2 WHERE chain = $1', [
      chain,
      seventh.hash,
    ]);
    // The database alone no longer shows it...
    expect((await verifyAuditChains(world.dataSource, keyring, { only: chain })).ok).toBe(true);
    // ...the anchor does, and so does the command, which reads it.
    const anchor = (await readAuditAnchor(world.store, keyring))!;
    const report = await verifyAuditChains(world.dataSource, keyring, {
      only: chain,
      anchors: anchor.checkpoints,
    });
    expect(report.breaks).toEqual([expect.objectContaining({ chain, kind: 'anchor', seq: 8 })]);
    const run = await runVerify(['--chain', chain]);
    expect(run.status.code).toBe(1);
    expect(run.output).toMatch(new RegExp(`BROKEN ${chain}: anchor: .*#10: its tail was cut`));
    expect(run.output).toContain(`checked against the anchor of ${anchor.at}`);

    // An anchor edited in the store does not verify.
    const raw = JSON.parse((await readObjectKey(LATEST_ANCHOR_KEY)).toString());
    raw.heads = raw.heads.map((h: { chain: string; seq: number }) =>
      h.chain === chain ? { ...h, seq: 7 } : h,
    );
    await world.store.put(LATEST_ANCHOR_KEY, Readable.from([Buffer.from(JSON.stringify(raw))]));
    await expect(readAuditAnchor(world.store, keyring)).rejects.toThrow(/does not verify: it was altered/);
  });

  it('verifies an untouched chain of 10,000 events (benchmark)', async () => {
    const userId = await chainWith(0);
    const chain = chainOf(userId);
    const { keyRef, key } = await keyring.current();
    let prev = GENESIS_HASH as Buffer;
    const start = Date.now() - 10_000_000;
    // Written in bulk with the chain's own link function (10,000 record() calls would dominate the test).
    for (let batch = 0; batch < 10; batch++) {
      const values: unknown[] = [];
      const tuples: string[] = [];
      for (let i = 0; i < 1000; i++) {
        const seq = batch * 1000 + i + 1;
        const content = {
          chain,
          seq,
          id: randomUUID(),
          action: 'file.downloaded',
          fileId: randomUUID(),
          ip: '192.0.2.1',
          details: { seq, filename: `f-${seq}.bin` },
          createdAt: new Date(start + seq * 1000),
          keyRef,
        };
        const hash = linkHash(key, prev, content);
        const p = values.length;
        tuples.push(
          `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}, $${p + 5}, $${p + 6}, $${p + 7}, 'file.downloaded', $${p + 8}, '192.0.2.1', $${p + 9}::jsonb, $${p + 10})`,
        );
        values.push(
          content.id,
          chain,
          seq,
          prev,
          hash,
          keyRef,
          userId,
          content.fileId,
          JSON.stringify(content.details),
          content.createdAt,
        );
        prev = hash;
      }
      await world.dataSource.query(
        `INSERT INTO audit_events (id, chain, seq, prev_hash, hash, key_ref, user_id, action, file_id, ip, details, created_at) VALUES ${tuples.join(', ')}`,
        values,
      );
    }
    await world.dataSource.query('INSERT INTO audit_chain_heads (chain, seq, hash) VALUES ($1, 10000, $2)', [
      chain,
      prev,
    ]);
    const began = performance.now();
    const report = await world.audit.verify({ userId });
    const ms = performance.now() - began;
    console.log(`audit:verify benchmark: 10,000 events verified in ${ms.toFixed(0)} ms`);
    expect(report).toMatchObject({ ok: true, events: 10_000 });
    // One more through the repository links onto the bulk-written head.
    await world.audit.record({ action: 'file.verified', userId, details: { ok: true } });
    expect(await world.audit.verify({ userId })).toMatchObject({ ok: true, events: 10_001 });
  });
});
