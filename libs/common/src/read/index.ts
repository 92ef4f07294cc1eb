/**
 * The read side of the object format: given a stored file's row, its object store and its key
 * provider, verified plaintext of the whole file or of one byte range. Framework-free; the gateway's
 * downloads and verify build on it. The write side is the crypto worker's encrypt pass.
 */
export { asCorruptObjectError, CorruptObjectError, isIntegrityFailure } from './integrity-failure.js';
export {
  type ByteRange,
  type OpenedObject,
  objectIdOf,
  openStoredFile,
  type StoredObjectRef,
} from './object-reader.js';
