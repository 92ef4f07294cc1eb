import { createHmac, timingSafeEqual } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { secretKey } from '../util/secret-key.js';
import type { AuditKeyring } from './audit-keyring.js';

/**
 * The tamper-evident audit chain (docs/security.md item 33). Events form one chain per user (`user:<id>`)
 * plus one for events without a user (`system`: failed sign-ins of unknown names, throttling): a user's
 * trail verifies on its own (the Activity page), and concurrent writers only wait for others writing to the
 * same chain. Each event has the next `seq` of its chain and
 *   hash = HMAC-SHA256(audit key, prev_hash | canonical content)
 * where prev_hash is the previous event's hash (32 zero bytes for the first) and the canonical content is
 * the JSON array of version, chain, seq, id, action, file id, ip, details (keys sorted), created_at
 * (ISO 8601, milliseconds) and key_ref. The user id is implied by the chain (a deleted user's events keep
 * their chain and hashes; `user_id` may then only be NULL). `audit_chain_heads` keeps each chain's last
 * seq and hash: a writer locks that row, so a chain never forks. Events from before the chain are
 * `legacy` (numbered, counted in their head row, not linked).
 */

export const LEGACY_CHAIN = 'legacy';
export const SYSTEM_CHAIN = 'system';
export const GENESIS_HASH = Buffer.alloc(32);

/** The chain an event of `userId` belongs to. */
export function chainOf(userId: string | null | undefined): string {
  return userId ? `user:${userId.toLowerCase()}` : SYSTEM_CHAIN;
}

/** What a link covers. */
export interface ChainedContent {
  chain: string;
  seq: number;
  id: string;
  action: string;
  fileId: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  createdAt: Date;
  keyRef: string;
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sorted((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

export function canonicalContent(e: ChainedContent): Buffer {
  return Buffer.from(
    JSON.stringify([
      'tess-audit-v1',
      e.chain,
      e.seq,
      e.id.toLowerCase(),
      e.action,
      e.fileId?.toLowerCase() ?? null,
      e.ip ?? null,
      sorted(e.details),
      e.createdAt.toISOString(),
      e.keyRef,
    ]),
    'utf8',
  );
}

export function linkHash(key: Buffer, prevHash: Buffer, content: ChainedContent): Buffer {
  return createHmac('sha256', secretKey(key)).update(prevHash).update(canonicalContent(content)).digest();
}

export type ChainBreakKind =
  /** An event's content or hash does not match its link: edited, or forged without the key. */
  | 'edited'
  /** Sequence numbers skip: events were deleted. */
  | 'deleted'
  /** An event does not link to the one before it: events were reordered or one was inserted. */
  | 'reordered'
  /** The chain ends before its head row says: the last events were deleted. */
  | 'truncated'
  /** Events after the head row, a chain without a head, or an unknown key: inserted behind TESS's back. */
  | 'inserted'
  /** The chain ends before a signed anchor in the object store says: the tail was cut, head row too. */
  | 'anchor';

export interface ChainBreak {
  chain: string;
  kind: ChainBreakKind;
  /** The event where the break shows, when there is one. */
  eventId: string | null;
  seq: number;
  at: Date | null;
  message: string;
}

export interface ChainReport {
  chain: string;
  events: number;
  /** The last event verified before the first break (or the last one). */
  verifiedUpTo: Date | null;
  break: ChainBreak | null;
}

export interface AuditVerifyReport {
  ok: boolean;
  chains: ChainReport[];
  events: number;
  legacyEvents: number;
  /** The first break of every broken chain. */
  breaks: ChainBreak[];
}

interface EventRow {
  id: string;
  seq: string;
  prev_hash: Buffer | null;
  hash: Buffer | null;
  key_ref: string | null;
  user_id: string | null;
  action: string;
  file_id: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  created_at: Date;
}

const PAGE = 2_000;

/** A known chain position (from a head row or an anchor) the chain must reach, with its hash. */
export interface ChainCheckpoint {
  seq: number;
  hash: Buffer | null;
}

/**
 * Walks chains (all, or `only`) in seq order, a page at a time (constant memory), and reports each chain's
 * first break. `anchors` are positions signed into the object store (see audit-anchor.ts): a chain shorter
 * than its anchor, or with another hash there, was cut or rewritten.
 */
export async function verifyAuditChains(
  dataSource: DataSource,
  keyring: AuditKeyring,
  options: { only?: string; anchors?: Map<string, ChainCheckpoint> } = {},
): Promise<AuditVerifyReport> {
  const heads = new Map<string, ChainCheckpoint>(
    (
      (await dataSource.query(
        `SELECT chain, seq, hash FROM audit_chain_heads${options.only ? ' WHERE chain = $1' : ''}`,
        options.only ? [options.only] : [],
      )) as Array<{ chain: string; seq: string; hash: Buffer | null }>
    ).map((h) => [h.chain, { seq: Number(h.seq), hash: h.hash }]),
  );
  // Anchored chains too: a chain deleted with its head still has its anchor.
  const chains: string[] = options.only
    ? [options.only]
    : [
        ...new Set([
          ...(
            (await dataSource.query(
              'SELECT DISTINCT chain FROM audit_events UNION SELECT chain FROM audit_chain_heads',
            )) as Array<{ chain: string }>
          ).map((r) => r.chain),
          ...(options.anchors?.keys() ?? []),
        ]),
      ].sort();
  const report: AuditVerifyReport = { ok: true, chains: [], events: 0, legacyEvents: 0, breaks: [] };
  for (const chain of chains) {
    const result =
      chain === LEGACY_CHAIN
        ? await verifyLegacy(dataSource, heads.get(chain))
        : await verifyChain(dataSource, keyring, chain, heads.get(chain), options.anchors?.get(chain));
    report.chains.push(result);
    if (chain === LEGACY_CHAIN) report.legacyEvents += result.events;
    else report.events += result.events;
    if (result.break) {
      report.ok = false;
      report.breaks.push(result.break);
    }
  }
  return report;
}

async function verifyLegacy(dataSource: DataSource, head: ChainCheckpoint | undefined): Promise<ChainReport> {
  const [{ n, last }] = (await dataSource.query(
    'SELECT count(*) AS n, max(seq) AS last FROM audit_events WHERE chain = $1',
    [LEGACY_CHAIN],
  )) as [{ n: string; last: string | null }];
  const events = Number(n);
  const expected = head?.seq ?? 0;
  const broken = events !== expected || Number(last ?? 0) !== expected;
  return {
    chain: LEGACY_CHAIN,
    events,
    verifiedUpTo: null,
    break: broken
      ? {
          chain: LEGACY_CHAIN,
          kind: events < expected ? 'deleted' : 'inserted',
          eventId: null,
          seq: expected,
          at: null,
          message: `${events} events from before the audit chain, ${expected} recorded when it was introduced`,
        }
      : null,
  };
}

async function verifyChain(
  dataSource: DataSource,
  keyring: AuditKeyring,
  chain: string,
  head: ChainCheckpoint | undefined,
  anchor: ChainCheckpoint | undefined,
): Promise<ChainReport> {
  const result: ChainReport = { chain, events: 0, verifiedUpTo: null, break: null };
  const user = chain.startsWith('user:') ? chain.slice(5) : null;
  let prev: Buffer = GENESIS_HASH;
  let expected = 1;
  let last = 0;
  const fail = (kind: ChainBreakKind, row: EventRow | null, seq: number, message: string): ChainReport => {
    result.break = { chain, kind, eventId: row?.id ?? null, seq, at: row?.created_at ?? null, message };
    return result;
  };
  for (;;) {
    const rows = (await dataSource.query(
      `SELECT id, seq, prev_hash, hash, key_ref, user_id, action, file_id, ip, details, created_at
       FROM audit_events WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT ${PAGE}`,
      [chain, last],
    )) as EventRow[];
    for (const row of rows) {
      const seq = Number(row.seq);
      const where = `event ${row.id} (${chain} #${seq}, ${row.created_at.toISOString()})`;
      if (seq !== expected) {
        return fail('deleted', row, seq, `${where}: events #${expected}..#${seq - 1} are missing (deleted)`);
      }
      if (!row.prev_hash || !row.hash || !row.key_ref || !equal(row.prev_hash, prev)) {
        return fail('reordered', row, seq, `${where} does not link to #${seq - 1}: reordered or inserted`);
      }
      let key: Buffer;
      try {
        key = await keyring.key(row.key_ref);
      } catch (error) {
        return fail(
          'inserted',
          row,
          seq,
          `${where} names an unknown audit key (${(error as Error).message})`,
        );
      }
      const content = {
        chain,
        seq,
        id: row.id,
        action: row.action,
        fileId: row.file_id,
        ip: row.ip,
        details: row.details,
        createdAt: row.created_at,
        keyRef: row.key_ref,
      };
      if (!equal(linkHash(key, prev, content), row.hash) || (row.user_id !== null && row.user_id !== user)) {
        return fail('edited', row, seq, `${where} does not match its hash: edited or forged`);
      }
      if (anchor?.seq === seq && anchor.hash && !equal(anchor.hash, row.hash)) {
        return fail(
          'anchor',
          row,
          seq,
          `${where} differs from the anchor in the object store: the chain was rewritten`,
        );
      }
      prev = row.hash;
      expected = seq + 1;
      result.events += 1;
      result.verifiedUpTo = row.created_at;
    }
    if (rows.length < PAGE) break;
    last = Number(rows[rows.length - 1]!.seq);
  }
  const end = expected - 1;
  if (!head)
    return fail('inserted', null, end, `chain ${chain} has events but no head: written behind TESS's back`);
  if (head.seq > end) {
    return fail(
      'truncated',
      null,
      end + 1,
      `chain ${chain} ends at #${end} but its head says #${head.seq}: the last events were deleted`,
    );
  }
  if (head.seq < end || (head.hash && !equal(head.hash, prev))) {
    return fail(
      'inserted',
      null,
      head.seq + 1,
      `chain ${chain} goes past its head (#${head.seq}): events were added behind TESS's back`,
    );
  }
  if (anchor && anchor.seq > end) {
    return fail(
      'anchor',
      null,
      end + 1,
      `chain ${chain} ends at #${end} but an anchor in the object store shows #${anchor.seq}: its tail was cut`,
    );
  }
  return result;
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
