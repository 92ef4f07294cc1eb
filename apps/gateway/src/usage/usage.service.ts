import { Inject, Injectable } from '@nestjs/common';
import { FileRepository, TESS_CONFIG, type TessConfig } from '#common';

/** What a user's files take, as the quota check counts it (every file but the failed ones). */
export interface StorageUsage {
  bytes: number;
  files: number;
  /** Present when QUOTA_BYTES is set. */
  quotaBytes?: number;
  /** Present when QUOTA_FILES is set. */
  quotaFiles?: number;
}

@Injectable()
export class UsageService {
  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
  ) {}

  async of(userId: string): Promise<StorageUsage> {
    const { bytes, files } = await this.files.usage(userId);
    const { quotaBytes, quotaFiles } = this.config.uploads;
    return { bytes, files, ...(quotaBytes ? { quotaBytes } : {}), ...(quotaFiles ? { quotaFiles } : {}) };
  }
}
