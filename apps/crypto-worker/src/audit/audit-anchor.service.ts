import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  AUDIT_KEYRING,
  type AuditKeyring,
  OBJECT_STORE,
  type ObjectStore,
  TESS_CONFIG,
  type TessConfig,
  writeAuditAnchor,
} from '#common';
import { repeatEvery, underTryLock } from '../jobs/singleton-task.js';

/** Arbitrary constant naming the anchor writer in pg_try_advisory_lock (the reconciler uses ...002). */
const ANCHOR_LOCK_KEY = 7_305_127_003;

/**
 * Every AUDIT_ANCHOR_INTERVAL (default 1h) and at start, one worker (a PostgreSQL advisory lock) writes
 * the audit chains' heads, signed, into the object store (libs/common/src/audit/audit-anchor.ts), so that
 * cutting a chain's tail together with its head row is found by `npm run audit:verify`
 * (docs/security.md item 33).
 */
@Injectable()
export class AuditAnchorService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AuditAnchor');
  private task?: { stop(): Promise<void> };

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly dataSource: DataSource,
    @Inject(AUDIT_KEYRING) private readonly keyring: AuditKeyring,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
  ) {}

  onApplicationBootstrap(): void {
    this.task = repeatEvery(
      this.config.auditAnchorIntervalMs,
      () => this.anchor(),
      (error) => this.logger.warn(`Could not anchor the audit chain: ${error.message}`),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task?.stop();
  }

  /** One anchor; false when another replica holds the lock. */
  async anchor(): Promise<boolean> {
    const written = await underTryLock(this.dataSource, ANCHOR_LOCK_KEY, async () => {
      const anchor = await writeAuditAnchor(this.dataSource, this.keyring, this.store);
      this.logger.log(`Anchored ${anchor.heads.length} audit chain head(s) at ${anchor.at}`);
      return true;
    });
    return written ?? false;
  }
}
