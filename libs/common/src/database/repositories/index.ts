export { type ActiveTokenOwner, ApiTokenRepository } from './api-token.repository.js';
export { type AuditPage, type AuditQuery, type AuditRecord, AuditRepository } from './audit.repository.js';
export {
  type FilePage,
  FileRepository,
  InvalidCursorError,
  type StoredFileFacts,
} from './file.repository.js';
export { DuplicateUsernameError, UserRepository } from './user.repository.js';
