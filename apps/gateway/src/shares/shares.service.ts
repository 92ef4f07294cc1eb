import { ConflictException, Inject, Injectable } from '@nestjs/common';
import {
  AuditRepository,
  type DownloadLease,
  type FileEntity,
  type ShareEntity,
  ShareRepository,
  TESS_CONFIG,
  type TessConfig,
  UserRepository,
} from '#common';
import { AccessPolicy } from '../access/access.policy.js';
import type { SharePrincipal, UserPrincipal } from '../access/principal.js';
import { PasswordService } from '../auth/password.service.js';
import { Clock } from './clock.js';
import { generateShareToken, hashShareToken, SHARE_TOKEN_PATTERN, tokenMatches } from './share-token.js';

/** A link without `expiresIn`/`expiresAt` lasts this long (capped by SHARE_MAX_EXPIRY). */
export const DEFAULT_SHARE_LIFETIME_MS = 7 * 86_400_000;
/**
 * A download slot of a limited link is reserved for this long and renewed every quarter of it while the
 * body streams; a gateway that dies mid-download gives its slot back by letting it run out.
 */
export const DOWNLOAD_LEASE_MS = 2 * 60_000;

export type ShareState = 'active' | 'expired' | 'exhausted' | 'revoked';

/** What the owner sees of a link (never its token, which only the create answer carries). */
export function shareView(share: ShareEntity, now: Date) {
  return {
    id: share.id,
    fileId: share.fileId,
    state: shareState(share, now),
    expiresAt: share.expiresAt,
    maxDownloads: share.maxDownloads,
    downloads: share.downloads,
    lastDownloadAt: share.lastDownloadAt,
    hasPassword: share.passwordHash !== null,
    note: share.note,
    createdAt: share.createdAt,
    revokedAt: share.revokedAt,
  };
}

export function shareState(share: ShareEntity, now: Date): ShareState {
  if (share.revokedAt || !share.fileId) return 'revoked';
  if (share.expiresAt.getTime() <= now.getTime()) return 'expired';
  if (share.maxDownloads !== null && share.downloads >= share.maxDownloads) return 'exhausted';
  return 'active';
}

/** Why a link no longer opens (the 410 page says which, and nothing about the file). */
export type GoneReason = 'revoked' | 'expired' | 'exhausted' | 'unavailable';

/** What a link token leads to right now. */
export type LinkState =
  | { kind: 'unknown' }
  | { kind: 'gone'; reason: GoneReason; share: ShareEntity }
  | { kind: 'live'; share: ShareEntity; file: FileEntity; principal: SharePrincipal; sharedBy: string };

export interface CreateShareInput {
  expiresInMs?: number;
  expiresAt?: Date;
  maxDownloads?: number | null;
  password?: string;
  note?: string;
}

export class ShareExpiryError extends Error {}

/** When a link created now expires: the request's choice, within (now, now + SHARE_MAX_EXPIRY]. */
export function shareExpiry(input: CreateShareInput, maxExpiryMs: number, now: Date): Date {
  const limit = now.getTime() + maxExpiryMs;
  const at =
    input.expiresAt?.getTime() ??
    now.getTime() + (input.expiresInMs ?? Math.min(DEFAULT_SHARE_LIFETIME_MS, maxExpiryMs));
  if (at <= now.getTime()) throw new ShareExpiryError('expiresAt must be in the future.');
  if (at > limit) {
    throw new ShareExpiryError(
      `A link may last at most ${Math.round(maxExpiryMs / 3_600_000)}h on this server (SHARE_MAX_EXPIRY); ` +
        `the latest allowed expiry is ${new Date(limit).toISOString()}.`,
    );
  }
  return new Date(at);
}

/** Share links: creating, listing and revoking them for their owner, and resolving them for anyone. */
@Injectable()
export class SharesService {
  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly shares: ShareRepository,
    private readonly users: UserRepository,
    private readonly audit: AuditRepository,
    private readonly access: AccessPolicy,
    private readonly passwords: PasswordService,
    private readonly clock: Clock,
  ) {}

  now(): Date {
    return this.clock.now();
  }

  /**
   * A new link to one of the owner's stored files (404 for anything the owner cannot read, 409 when
   * it is not stored). Returns the token once; only its hash is kept.
   */
  async create(
    owner: UserPrincipal,
    fileId: string,
    input: CreateShareInput,
    ip: string | undefined,
  ): Promise<{ share: ShareEntity; token: string }> {
    const file = await this.access.readableFile(owner, fileId);
    if (file.status !== 'stored') {
      throw new ConflictException(`Only stored files can be shared; this one is ${file.status}.`);
    }
    const now = this.now();
    const expiresAt = shareExpiry(input, this.config.shares.maxExpiryMs, now);
    const passwordHash = input.password ? await this.passwords.hash(input.password) : null;
    const token = generateShareToken();
    const share = await this.shares.create({
      ownerId: owner.userId,
      fileId: file.id,
      tokenHash: hashShareToken(token),
      passwordHash,
      note: input.note?.trim() || null,
      expiresAt,
      maxDownloads: input.maxDownloads ?? null,
    });
    await this.audit.record({
      action: 'share.created',
      userId: owner.userId,
      fileId: file.id,
      ip,
      details: {
        shareId: share.id,
        filename: file.filename,
        expiresAt: expiresAt.toISOString(),
        maxDownloads: share.maxDownloads,
        hasPassword: passwordHash !== null,
      },
    });
    return { share, token };
  }

  async listForFile(owner: UserPrincipal, fileId: string): Promise<ShareEntity[]> {
    await this.access.readableFile(owner, fileId);
    return this.shares.listForFile(owner.userId, fileId);
  }

  listAll(owner: UserPrincipal, limit: number, cursor?: string) {
    return this.shares.listForOwner(owner.userId, limit, cursor);
  }

  /** Revokes the owner's link; false when they have no such unrevoked link. */
  async revoke(owner: UserPrincipal, id: string, ip: string | undefined): Promise<boolean> {
    const share = await this.shares.findOwned(owner.userId, id);
    if (!share || !(await this.shares.revoke(owner.userId, id, this.now()))) return false;
    await this.audit.record({
      action: 'share.revoked',
      userId: owner.userId,
      fileId: share.fileId,
      ip,
      details: { shareId: id, reason: 'revoked by the owner' },
    });
    return true;
  }

  /** What `token` leads to now. Unknown covers malformed tokens too. */
  async resolve(token: string): Promise<LinkState> {
    if (!SHARE_TOKEN_PATTERN.test(token)) return { kind: 'unknown' };
    const share = await this.shares.findByTokenHash(hashShareToken(token));
    if (!share || !tokenMatches(token, share.tokenHash)) return { kind: 'unknown' };
    const state = shareState(share, this.now());
    // A deleted file's links were revoked with it; the page says the file is gone rather than "revoked".
    if (state !== 'active') return { kind: 'gone', reason: share.fileId ? state : 'unavailable', share };
    const principal: SharePrincipal = {
      kind: 'share',
      shareId: share.id,
      ownerId: share.ownerId,
      fileId: share.fileId!,
    };
    const file = await this.access.findReadableFile(principal, share.fileId!);
    if (file?.status !== 'stored') return { kind: 'gone', reason: 'unavailable', share };
    const owner = await this.users.findById(share.ownerId);
    return { kind: 'live', share, file, principal, sharedBy: owner?.username ?? 'a TESS user' };
  }

  checkPassword(share: ShareEntity, password: string): Promise<boolean> {
    return share.passwordHash ? this.passwords.verify(share.passwordHash, password) : Promise.resolve(true);
  }

  /** A download slot of a limited link (null: none left right now); unlimited links need none. */
  reserve(share: ShareEntity): Promise<DownloadLease | null> {
    const now = this.now();
    return this.shares.reserve(share.id, now, new Date(now.getTime() + DOWNLOAD_LEASE_MS));
  }

  renew(lease: DownloadLease): Promise<void> {
    return this.shares.renew(lease, new Date(this.now().getTime() + DOWNLOAD_LEASE_MS));
  }

  release(lease: DownloadLease): Promise<void> {
    return this.shares.release(lease);
  }

  countDownload(share: ShareEntity, lease: DownloadLease | null): Promise<number | null> {
    return this.shares.countDownload(share.id, lease, this.now());
  }

  /** Revokes a file's links before the file is deleted (each revocation audited). */
  async revokeForFile(file: FileEntity, ip: string | undefined): Promise<void> {
    for (const shareId of await this.shares.revokeForFile(file.id, this.now())) {
      await this.audit.record({
        action: 'share.revoked',
        userId: file.ownerId,
        fileId: file.id,
        ip,
        details: { shareId, reason: 'file deleted' },
      });
    }
  }
}
