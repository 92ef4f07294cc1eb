/**
 * The TESS encrypted object format (v1), shared by the crypto worker (encrypt) and the gateway
 * (verify, decrypt, ranged reads). Specified in docs/format.md.
 */
export {
  createDecryptStream,
  createObjectDecryptStream,
  type DecryptOptions,
  DecryptStream,
  type ObjectDecryptOptions,
  ObjectDecryptStream,
} from './decrypt.stream.js';
export {
  createEncryptStream,
  type EncryptOptions,
  EncryptStream,
  SegmentEncryptor,
} from './encrypt.stream.js';
export { IntegrityError, type IntegrityReason, isIntegrityError } from './integrity.error.js';
export { type DecryptObjectOptions, decryptObject, encryptObject } from './object-buffer.js';
export {
  ALGORITHM_AES_256_GCM,
  DATA_KEY_LENGTH,
  DEFAULT_SEGMENT_SIZE,
  FORMAT_VERSION,
  fileIdFromBytes,
  fileIdToBytes,
  HEADER_MAC_LENGTH,
  HEADER_PREFIX_LENGTH,
  headerLengthFromPrefix,
  MAGIC,
  MAX_HEADER_LENGTH,
  MAX_KEY_REF_LENGTH,
  MAX_SEGMENT_SIZE,
  MAX_WRAPPED_KEY_LENGTH,
  MIN_HEADER_LENGTH,
  MIN_SEGMENT_SIZE,
  NONCE_PREFIX_LENGTH,
  type ObjectHeader,
  parseHeader,
  TAG_LENGTH,
  type VerifyHeaderOptions,
  verifyHeader,
} from './object-header.js';
export {
  ciphertextLength,
  describeObject,
  MAX_SEGMENTS,
  type ObjectGeometry,
  type ObjectLayout,
  plaintextLength,
  plaintextSegmentSize,
  planRange,
  RangeNotSatisfiableError,
  type SegmentRange,
  segmentCount,
  segmentOffset,
} from './segment-layout.js';
