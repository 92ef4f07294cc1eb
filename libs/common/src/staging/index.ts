/**
 * The TESS staging format (v1): uploads at rest in TEMP_DIR as authenticated records until a worker has
 * stored them. Specified in docs/format.md ("Staging format").
 */

export {
  type FollowStopReason,
  StagingFollower,
  type StagingFollowOptions,
  StagingFollowStopped,
} from './staging.follower.js';
export {
  recoverLength,
  type StagingLayout,
  StagingReader,
  type StagingReaderOptions,
  type StagingResumePoint,
  scanStaging,
} from './staging.reader.js';
export { StagingWriter, type StagingWriterOptions } from './staging.writer.js';
export {
  DEFAULT_RECORD_SIZE,
  STAGING_HEADER_LENGTH,
  STAGING_MAGIC,
} from './staging-format.js';
export {
  isStagingIntegrityError,
  StagingIntegrityError,
  type StagingIntegrityReason,
} from './staging-integrity.error.js';
