import type { TypePolicy } from '#common';
import type { PlaintextTap } from './plaintext-tap.js';
import { PlaintextRejectedError } from './plaintext-tap.js';
import { ACTIVE_CONTENT, DETECTION_PREFIX, type TypeDetector } from './type-detector.js';

/** The facts of the type check: what the content is, and a mismatch TYPE_MISMATCH=flag let through. */
export interface FileTypeFacts {
  detectedType: string;
  typeWarning: string | null;
}

/** Bytes carried from one chunk to the next so a marker split by a chunk boundary is still seen. */
const OVERLAP = 64;

/**
 * Sniffs the type from the real bytes and applies the type policy (docs/security.md, content checks): the
 * first DETECTION_PREFIX bytes are kept (a copy, so the chunk is released at once) and handed to the
 * detector at the end; the verdict rejects the file (`rejected`, nothing stored) or becomes its facts.
 * With BLOCK_ACTIVE_CONTENT, a file that starts like markup is searched for script in every chunk, not
 * only in the prefix, so script after the first 64 KiB is found too.
 */
export class FileTypeTap implements PlaintextTap<FileTypeFacts> {
  private readonly prefix = Buffer.alloc(DETECTION_PREFIX);
  private prefixLength = 0;
  /** null: not decided yet (no chunk seen); false: not markup, or active content does not matter. */
  private searchScript: boolean | null;
  private tail = '';
  private sawScript = false;

  constructor(
    private readonly detector: TypeDetector,
    private readonly policy: TypePolicy,
    private readonly file: { filename: string; contentType: string },
  ) {
    this.searchScript = policy.config.blockActiveContent ? null : false;
  }

  update(chunk: Buffer, release: () => void): void {
    try {
      if (this.prefixLength < DETECTION_PREFIX) {
        this.prefixLength += chunk.copy(
          this.prefix,
          this.prefixLength,
          0,
          DETECTION_PREFIX - this.prefixLength,
        );
      }
      if (this.searchScript === null) this.searchScript = startsLikeMarkup(chunk);
      if (this.searchScript && !this.sawScript) {
        // latin1 maps bytes 1:1, so the ASCII markers match whatever the encoding of the rest.
        const text = this.tail + chunk.toString('latin1');
        this.sawScript = ACTIVE_CONTENT.test(text);
        this.tail = text.slice(-OVERLAP);
      }
    } finally {
      release();
    }
  }

  async finish(): Promise<FileTypeFacts> {
    const detected = await this.detector.detect(this.prefix.subarray(0, this.prefixLength));
    const markup = ['text/html', 'image/svg+xml', 'application/xml'].includes(detected.type);
    const content = { ...detected, activeContent: markup && (detected.activeContent || this.sawScript) };
    const verdict = this.policy.checkContent(this.file.filename, this.file.contentType, content);
    if (!verdict.ok) {
      throw new PlaintextRejectedError(verdict.violation.message, 'rejected', {
        rule: verdict.violation.rule,
        detectedType: detected.type,
      });
    }
    return { detectedType: detected.type, typeWarning: verdict.warning };
  }

  abort(): void {}
}

/** The first non-blank character (after a UTF-8 BOM) is `<`. */
function startsLikeMarkup(chunk: Buffer): boolean {
  let i = chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf ? 3 : 0;
  while (i < chunk.length && (chunk[i] === 0x20 || (chunk[i]! >= 0x09 && chunk[i]! <= 0x0d))) i++;
  return chunk[i] === 0x3c;
}
