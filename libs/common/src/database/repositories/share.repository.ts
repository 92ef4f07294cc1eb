import { Injectable } from '@nestjs/common';
import { DataSource, IsNull, type Repository } from 'typeorm';
import { ShareEntity } from '../entities/share.entity.js';
import { keysetPage } from './file-cursor.js';

export interface SharePage {
  items: ShareEntity[];
  nextCursor: string | null;
}

/** A reserved download slot of a link with a download limit (see `reserve`). */
export interface DownloadLease {
  id: string;
  shareId: string;
}

/** TypeORM answers an UPDATE ... RETURNING on PostgreSQL with `[rows, rowCount]`, a SELECT with the rows. */
function returned<T>(result: [T[], number]): T[] {
  return result[0];
}

/**
 * Share links and their download slots. Every time it compares with is passed in (`now`), so the
 * gateway's clock, not the database's, decides expiry; tests move that clock.
 */
@Injectable()
export class ShareRepository {
  private readonly repo: Repository<ShareEntity>;

  constructor(private readonly dataSource: DataSource) {
    this.repo = dataSource.getRepository(ShareEntity);
  }

  async create(
    data: Pick<
      ShareEntity,
      'ownerId' | 'fileId' | 'tokenHash' | 'passwordHash' | 'note' | 'expiresAt' | 'maxDownloads'
    >,
  ): Promise<ShareEntity> {
    return this.repo.save(this.repo.create({ ...data, downloads: 0 }));
  }

  findByTokenHash(tokenHash: string): Promise<ShareEntity | null> {
    return this.repo.findOneBy({ tokenHash });
  }

  findOwned(ownerId: string, id: string): Promise<ShareEntity | null> {
    return this.repo.findOneBy({ id, ownerId });
  }

  findById(id: string): Promise<ShareEntity | null> {
    return this.repo.findOneBy({ id });
  }

  /** The file's links, newest first (revoked ones included: the owner sees what happened). */
  listForFile(ownerId: string, fileId: string): Promise<ShareEntity[]> {
    return this.repo.find({ where: { ownerId, fileId }, order: { createdAt: 'DESC', id: 'DESC' } });
  }

  /** All of the owner's links, newest first, in keyset pages like the files list. */
  listForOwner(ownerId: string, limit: number, cursor?: string): Promise<SharePage> {
    const qb = this.repo.createQueryBuilder('s').where('s.owner_id = :ownerId', { ownerId });
    return keysetPage(qb, 's', limit, cursor);
  }

  /** Revokes the owner's active link; false when no such unrevoked link belongs to them. */
  async revoke(ownerId: string, id: string, now: Date): Promise<boolean> {
    const result = await this.repo.update({ id, ownerId, revokedAt: IsNull() }, { revokedAt: now });
    return (result.affected ?? 0) > 0;
  }

  /** Revokes every active link of a file (before the file is deleted); returns their ids. */
  async revokeForFile(fileId: string, now: Date): Promise<string[]> {
    const rows = returned<{ id: string }>(
      await this.repo.query(
        'UPDATE shares SET revoked_at = $2 WHERE file_id = $1 AND revoked_at IS NULL RETURNING id',
        [fileId, now],
      ),
    );
    return rows.map((r) => r.id);
  }

  /**
   * Reserves one download slot of a limited link, or null when completed downloads plus the live
   * reservations of others already reach the limit (or the link was revoked or expired meanwhile). The link's row is locked while it counts, so two
   * concurrent last downloads cannot both get a slot. A reservation lives until `leaseUntil`; a
   * gateway that dies mid-download stops renewing it, and it stops counting once it is past.
   */
  async reserve(shareId: string, now: Date, leaseUntil: Date): Promise<DownloadLease | null> {
    return this.dataSource.transaction(async (m) => {
      const rows: Array<{ downloads: number; max_downloads: number | null }> = await m.query(
        `SELECT downloads, max_downloads FROM shares
          WHERE id = $1 AND revoked_at IS NULL AND file_id IS NOT NULL AND expires_at > $2
          FOR UPDATE`,
        [shareId, now],
      );
      // Revoked or expired since the link was looked up: no slot.
      const row = rows[0];
      if (!row) return null;
      await m.query('DELETE FROM share_download_leases WHERE share_id = $1 AND expires_at <= $2', [
        shareId,
        now,
      ]);
      if (row.max_downloads !== null) {
        const live: Array<{ n: string }> = await m.query(
          'SELECT count(*) AS n FROM share_download_leases WHERE share_id = $1',
          [shareId],
        );
        if (row.downloads + Number(live[0]?.n ?? 0) >= row.max_downloads) return null;
      }
      const inserted: Array<{ id: string }> = await m.query(
        'INSERT INTO share_download_leases (share_id, expires_at) VALUES ($1, $2) RETURNING id',
        [shareId, leaseUntil],
      );
      return { id: inserted[0]!.id, shareId };
    });
  }

  /** Keeps a reservation alive while its download streams. */
  async renew(lease: DownloadLease, leaseUntil: Date): Promise<void> {
    await this.repo.query('UPDATE share_download_leases SET expires_at = $2 WHERE id = $1', [
      lease.id,
      leaseUntil,
    ]);
  }

  /** Gives a reservation back (the download failed or was aborted): it never counted. */
  async release(lease: DownloadLease): Promise<void> {
    await this.repo.query('DELETE FROM share_download_leases WHERE id = $1', [lease.id]);
  }

  /**
   * Counts one completed download, turning the reservation (if any) into it in one transaction; the
   * limit is checked again in the UPDATE (and by a CHECK constraint), so the count never passes it.
   * Returns the new count, or null when the limit was already reached (a reservation that expired
   * while its gateway was frozen, and was taken by another download).
   */
  async countDownload(shareId: string, lease: DownloadLease | null, now: Date): Promise<number | null> {
    return this.dataSource.transaction(async (m) => {
      if (lease) await m.query('DELETE FROM share_download_leases WHERE id = $1', [lease.id]);
      const rows = returned<{ downloads: number }>(
        await m.query(
          `UPDATE shares SET downloads = downloads + 1, last_download_at = $2
            WHERE id = $1 AND (max_downloads IS NULL OR downloads < max_downloads)
            RETURNING downloads`,
          [shareId, now],
        ),
      );
      return rows[0]?.downloads ?? null;
    });
  }

  /** Live reservations of a link (tests and the owner's view of downloads in flight). */
  async liveLeases(shareId: string, now: Date): Promise<number> {
    const rows: Array<{ n: string }> = await this.repo.query(
      'SELECT count(*) AS n FROM share_download_leases WHERE share_id = $1 AND expires_at > $2',
      [shareId, now],
    );
    return Number(rows[0]?.n ?? 0);
  }
}
