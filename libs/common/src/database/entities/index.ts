import { ApiTokenEntity } from './api-token.entity.js';
import { AuditEventEntity } from './audit-event.entity.js';
import { FileEntity } from './file.entity.js';
import { FolderEntity } from './folder.entity.js';
import { InviteEntity } from './invite.entity.js';
import { MfaPasskeyEntity, MfaRecoveryCodeEntity, MfaTotpEntity } from './mfa.entity.js';
import { PasswordResetTokenEntity } from './password-reset-token.entity.js';
import { ShareEntity } from './share.entity.js';
import { UserEntity } from './user.entity.js';

export { ApiTokenEntity } from './api-token.entity.js';
export { AUDIT_ACTIONS, type AuditAction, AuditEventEntity } from './audit-event.entity.js';
export {
  FILE_STATUSES,
  FileEntity,
  type FileStatus,
  REFUSED_STATUSES,
  type RefusedStatus,
} from './file.entity.js';
export { FolderEntity } from './folder.entity.js';
export { InviteEntity } from './invite.entity.js';
export { MfaPasskeyEntity, MfaRecoveryCodeEntity, MfaTotpEntity } from './mfa.entity.js';
export { PasswordResetTokenEntity } from './password-reset-token.entity.js';
export { ShareEntity } from './share.entity.js';
export {
  effectiveQuota,
  USER_ROLES,
  USER_STATUSES,
  UserEntity,
  type UserRole,
  type UserStatus,
} from './user.entity.js';

export const ENTITIES = [
  UserEntity,
  FileEntity,
  ApiTokenEntity,
  AuditEventEntity,
  PasswordResetTokenEntity,
  ShareEntity,
  MfaTotpEntity,
  MfaRecoveryCodeEntity,
  MfaPasskeyEntity,
  InviteEntity,
  FolderEntity,
];
