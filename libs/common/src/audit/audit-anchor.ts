import { createHmac, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import type { DataSource } from 'typeorm';
import type { ObjectStore } from '../storage/object-store.js';
import { secretKey } from '../util/secret-key.js';
import type { ChainCheckpoint } from './audit-chain.js';
import type { AuditKeyring } from './audit-keyring.js';

/** The newest anchor; each one is also kept under its hour (`audit-anchors/<yyyy-mm-ddThh>.json`). */
export const LATEST_ANCHOR_KEY = 'audit-anchors/latest.json';

/**
 * A signed copy of every chain's head in the object store (docs/security.md item 33): the database alone
 * can drop a chain's last events *and* move its head back, but not the anchor, so verification finds a
 * chain shorter than (or different from) what was anchored. Signed with the audit key (HMAC-SHA256 over
 * the JSON without `mac`), so the store alone cannot forge one either.
 */
export interface AuditAnchor {
  version: 1;
  at: string;
  keyRef: string;
  heads: Array<{ chain: string; seq: number; hash: string | null }>;
  mac: string;
}

function macOf(key: Buffer, anchor: Omit<AuditAnchor, 'mac'>): Buffer {
  return createHmac('sha256', secretKey(key))
    .update(JSON.stringify([anchor.version, anchor.at, anchor.keyRef, anchor.heads]))
    .digest();
}

/** Writes the current heads as the latest anchor (and the hour's). Returns what was written. */
export async function writeAuditAnchor(
  dataSource: DataSource,
  keyring: AuditKeyring,
  store: ObjectStore,
  now = new Date(),
): Promise<AuditAnchor> {
  const rows = (await dataSource.query(
    "SELECT chain, seq, hash FROM audit_chain_heads WHERE chain <> 'legacy' ORDER BY chain",
  )) as Array<{ chain: string; seq: string; hash: Buffer | null }>;
  const { keyRef, key } = await keyring.current();
  const unsigned = {
    version: 1 as const,
    at: now.toISOString(),
    keyRef,
    heads: rows.map((r) => ({ chain: r.chain, seq: Number(r.seq), hash: r.hash?.toString('hex') ?? null })),
  };
  const anchor: AuditAnchor = { ...unsigned, mac: macOf(key, unsigned).toString('hex') };
  const body = Buffer.from(JSON.stringify(anchor));
  await store.put(`audit-anchors/${anchor.at.slice(0, 13)}.json`, Readable.from([body]), {
    size: body.length,
  });
  await store.put(LATEST_ANCHOR_KEY, Readable.from([body]), { size: body.length });
  return anchor;
}

/**
 * The latest anchor's checkpoints per chain, its time, or null when none was written yet. Throws when the
 * anchor does not verify (edited, or signed with a key this keyring does not have).
 */
export async function readAuditAnchor(
  store: ObjectStore,
  keyring: AuditKeyring,
): Promise<{ at: string; checkpoints: Map<string, ChainCheckpoint> } | null> {
  if (!(await store.stat(LATEST_ANCHOR_KEY))) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of await store.getRange(LATEST_ANCHOR_KEY, 0)) chunks.push(chunk as Buffer);
  const anchor = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AuditAnchor;
  const { mac, ...unsigned } = anchor;
  const expected = macOf(await keyring.key(anchor.keyRef), unsigned);
  const given = Buffer.from(String(mac), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new Error(`the audit anchor ${LATEST_ANCHOR_KEY} (${anchor.at}) does not verify: it was altered`);
  }
  return {
    at: anchor.at,
    checkpoints: new Map(
      anchor.heads.map((h) => [h.chain, { seq: h.seq, hash: h.hash ? Buffer.from(h.hash, 'hex') : null }]),
    ),
  };
}
