import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { FileRepository, TESS_CONFIG, type TessConfig } from '#common';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Removes orphaned upload temp files (a gateway killed mid-upload, a job that gave up) older than
 * TEMP_MAX_AGE. A temp file whose file is still queued or processing is never touched, however old:
 * it is the only copy until the worker stores it. An unfinished resumable upload (`receiving`) lives until
 * its own expiry (TUS_UPLOAD_EXPIRY), when TusService removes it with its row and key. Safe to run on every replica at once.
 */
@Injectable()
export class TempSweeperService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TempSweeperService.name);
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
  ) {}

  onApplicationBootstrap(): void {
    const every = Math.min(Math.max(this.config.tempMaxAgeMs / 4, 1_000), 10 * 60_000);
    this.timer = setInterval(() => {
      this.sweep().catch((error: Error) => this.logger.warn(`Temp sweep failed: ${error.message}`));
    }, every);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One pass; returns the names removed. */
  async sweep(now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    let names: string[];
    try {
      names = await readdir(this.config.tempDir);
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') return removed;
      throw error;
    }
    for (const name of names) {
      const path = join(this.config.tempDir, name);
      const info = await stat(path).catch(() => null);
      if (!info?.isFile() || now - info.mtimeMs < this.config.tempMaxAgeMs) continue;
      if (UUID.test(name)) {
        const file = await this.files.findById(name);
        if (file && (file.status === 'queued' || file.status === 'processing')) continue;
        if (file?.status === 'receiving') continue;
      }
      await unlink(path).catch(() => undefined);
      removed.push(name);
    }
    if (removed.length) this.logger.log(`Removed ${removed.length} orphaned temp file(s)`);
    return removed;
  }
}
