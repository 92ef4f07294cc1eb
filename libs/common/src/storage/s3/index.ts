export { describeS3Error, isRetryableS3Error, type S3RetryOptions } from './s3.errors.js';
export {
  choosePartSize,
  S3_DEFAULT_PART_SIZE,
  S3_MAX_PART_SIZE,
  S3_MAX_PARTS,
  S3_MIN_PART_SIZE,
  S3MultipartWriter,
  S3UploadError,
} from './s3.multipart-writer.js';
export * from './s3.object-store.js';
export { S3RangeReader } from './s3.range-reader.js';
