import { Inject, Injectable } from '@nestjs/common';
import { effectiveQuota, FileRepository, TESS_CONFIG, type TessConfig, UserRepository } from '#common';

/** What a user's files take, as the quota check counts it (every file but the failed ones). */
export interface StorageUsage {
  bytes: number;
  files: number;
  /** Present when a byte quota applies (the user's own, else QUOTA_BYTES). */
  quotaBytes?: number;
  /** Present when a file-count quota applies (the user's own, else QUOTA_FILES). */
  quotaFiles?: number;
}

@Injectable()
export class UsageService {
  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
    private readonly users: UserRepository,
  ) {}

  async of(userId: string): Promise<StorageUsage> {
    const { bytes, files } = await this.files.usage(userId);
    const { quotaBytes, quotaFiles } = effectiveQuota(await this.users.findById(userId), this.config.uploads);
    return { bytes, files, ...(quotaBytes ? { quotaBytes } : {}), ...(quotaFiles ? { quotaFiles } : {}) };
  }
}
