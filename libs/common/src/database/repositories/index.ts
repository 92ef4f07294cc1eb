export { type ActiveTokenOwner, ApiTokenRepository } from './api-token.repository.js';
export { type AuditPage, type AuditQuery, type AuditRecord, AuditRepository } from './audit.repository.js';
export {
  type CommittedVersion,
  type FilePage,
  FileRepository,
  InvalidCursorError,
  type LockFence,
  type NewQueuedFile,
  numberedName,
  type StaleCursor,
  type StaleFile,
  type StoredFileFacts,
} from './file.repository.js';
export {
  CursorMismatchError,
  FILE_SORTS,
  type FileListQuery,
  type FileSort,
  type SortOrder,
} from './file-listing.js';
export {
  type FileVersion,
  FileVersionRepository,
  type RemovedVersion,
  type VersionRefusal,
} from './file-version.repository.js';
export {
  type FolderContents,
  type FolderCrumb,
  FolderGoneError,
  FolderRepository,
  NameTakenError,
  violates,
} from './folder.repository.js';
export { type InviteProblem, InviteRepository } from './invite.repository.js';
export { MAX_PASSKEYS, MfaRepository, type NewPasskey, type SealedTotpSecret } from './mfa.repository.js';
export {
  PasswordResetTokenRepository,
  type ResetTokenState,
} from './password-reset-token.repository.js';
export { type DownloadLease, type SharePage, ShareRepository } from './share.repository.js';
export {
  AdminUserRepository,
  type AdminUserRow,
  DuplicateUsernameError,
  UserRepository,
} from './user.repository.js';
