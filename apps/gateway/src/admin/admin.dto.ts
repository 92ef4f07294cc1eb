import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class AdminUserDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() username!: string;
  @ApiProperty() email!: string;
  @ApiProperty({ enum: ['user', 'admin'] }) role!: string;
  @ApiProperty({
    enum: ['active', 'disabled', 'deleting'],
    description: 'disabled: no session, token or socket works; deleting: the delete-user job runs',
  })
  status!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) lastLoginAt!: string | null;
  @ApiProperty({ type: 'integer', description: 'Files as the quota counts them (not failed/refused)' })
  files!: number;
  @ApiProperty({ type: 'integer', description: 'Plaintext bytes of those files' }) bytes!: number;
  @ApiProperty({ description: 'Whether a second factor (TOTP or a passkey) is on' }) mfa!: boolean;
  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'Override of QUOTA_BYTES; null: follows it, 0: none',
  })
  quotaBytes!: number | null;
  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'Override of QUOTA_FILES; null: follows it, 0: none',
  })
  quotaFiles!: number | null;
}

export class AdminUserPageDto {
  @ApiProperty({ type: [AdminUserDto] }) items!: AdminUserDto[];
  @ApiProperty({ type: 'integer' }) total!: number;
  @ApiProperty({ type: 'integer' }) page!: number;
}

export class MfaResetDto {
  @ApiProperty({ description: 'False when the user had no second factor' }) removed!: boolean;
}

export class DeleteRequestedDto {
  @ApiProperty({ description: 'The delete-user job id' }) jobId!: string;
}

export class InviteDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ nullable: true, type: String, description: 'Only this address may register with it' })
  email!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) usedAt!: string | null;
  @ApiProperty({ enum: ['open', 'used', 'expired', 'revoked'] }) state!: string;
}

export class InviteCreatedDto extends InviteDto {
  @ApiProperty({
    example: 'https://tess.example/register?invite=inv_3q2-7wJ…',
    description: 'The single-use link (256 random bits); shown once, only its SHA-256 is stored',
  })
  url!: string;
}

export class InviteListDto {
  @ApiProperty({ type: [InviteDto] }) items!: InviteDto[];
}

export class FailedJobDto {
  @ApiProperty({ description: 'For encrypt-file, the file id' }) id!: string;
  @ApiProperty({ enum: ['encrypt-file', 'delete-user'] }) name!: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) fileId!: string | null;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'The user the job is for' })
  userId!: string | null;
  @ApiProperty({ description: 'Why the last attempt failed' }) failedReason!: string;
  @ApiProperty({ type: 'integer' }) attemptsMade!: number;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) finishedAt!: string | null;
}

export class FailedJobListDto {
  @ApiProperty({ type: [FailedJobDto] }) items!: FailedJobDto[];
}

export class WorkerDto {
  @ApiProperty({ description: 'The BullMQ connection name' }) name!: string;
  @ApiProperty({ description: 'Address of the worker process as Redis sees it' }) addr!: string;
  @ApiProperty({ type: 'integer' }) ageSeconds!: number;
  @ApiProperty({ type: 'integer' }) idleSeconds!: number;
}

export class StorageDto {
  @ApiProperty({ type: 'integer', description: 'Plaintext bytes of stored (and corrupt) files' })
  storedBytes!: number;
  @ApiProperty({ type: 'integer', description: 'Their encrypted size in the object store' })
  encryptedBytes!: number;
}

export class SystemDto {
  @ApiProperty({ type: StorageDto }) storage!: StorageDto;
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'integer' },
    description: 'Files per status',
  })
  filesByStatus!: Record<string, number>;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'integer' },
    nullable: true,
    description: 'Jobs per BullMQ state (waiting, active, delayed, failed...); null while Redis is down',
  })
  queue!: Record<string, number> | null;
  @ApiProperty({ type: [FailedJobDto] }) failedJobs!: FailedJobDto[];
  @ApiProperty({ type: [WorkerDto], description: 'Worker connections on the queue (BullMQ getWorkers)' })
  workers!: WorkerDto[];
}
