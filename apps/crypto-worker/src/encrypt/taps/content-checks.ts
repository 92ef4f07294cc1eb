import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { TESS_CONFIG, type TessConfig, TessMetrics, TypePolicy } from '#common';
import { ClamdClient } from '../../scan/clamd-client.js';
import { TypeDetector } from './type-detector.js';

/** How long a passed stream-limit probe is trusted before readiness probes clamd again. */
const LIMIT_RECHECK_MS = 60_000;

/**
 * What the content taps need for a file: the type policy and detector, and the clamd client when
 * SCAN_MODE=required. Also the scanner's readiness check: clamd answers PING, and accepts a stream of
 * MAX_FILE_SIZE bytes (its StreamMaxLength is at least that), checked at startup and by /readyz, so a clamd
 * configured to scan less than TESS accepts makes the worker unready with a message instead of refusing
 * large files one by one.
 */
@Injectable()
export class ContentChecks implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ContentChecks');
  readonly policy: TypePolicy;
  readonly detector = new TypeDetector();
  readonly clamd: ClamdClient | null;
  private limitCheckedAt = 0;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    readonly metrics: TessMetrics,
  ) {
    this.policy = new TypePolicy(config.content);
    this.clamd =
      config.scan.mode === 'required' ? new ClamdClient(config.scan.clamd, config.scan.timeoutMs) : null;
  }

  /** Readiness of the scanner (only registered when SCAN_MODE=required). */
  async checkScanner(): Promise<void> {
    const clamd = this.clamd;
    if (!clamd) return;
    const pong = await clamd.command('PING');
    if (pong !== 'PONG')
      throw new Error(`clamd at ${clamd.describe()} answered PING with "${pong.slice(0, 80)}"`);
    if (Date.now() - this.limitCheckedAt < LIMIT_RECHECK_MS) return;
    const max = this.config.uploads.maxFileSize;
    if (!(await clamd.acceptsStreamOf(max))) {
      throw new Error(
        `clamd at ${clamd.describe()} scans streams smaller than MAX_FILE_SIZE (${max} bytes): ` +
          `set StreamMaxLength to at least ${max} in its clamd.conf`,
      );
    }
    this.limitCheckedAt = Date.now();
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.clamd) return;
    // Not fatal: clamd may still be loading its signatures. Jobs wait (fail closed) and /readyz says why.
    await this.checkScanner().then(
      () => this.logger.log(`malware scanning with clamd at ${this.clamd!.describe()}`),
      (error: Error) => this.logger.error(`the malware scanner is not ready: ${error.message}`),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.detector.onApplicationShutdown();
  }
}
