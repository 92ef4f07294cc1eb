import { applyDecorators } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  ApiBearerAuth,
  ApiCookieAuth,
  ApiProperty,
  ApiPropertyOptional,
  ApiResponse,
  DocumentBuilder,
  SwaggerModule,
} from '@nestjs/swagger';
import { FILE_STATUSES, JOB_STAGES } from '#common';

/** The JSON error every API endpoint answers with. */
export class ErrorDto {
  @ApiProperty({ example: 404 }) statusCode!: number;
  @ApiProperty({ example: 'Not Found' }) error!: string;
  @ApiProperty({ example: 'No such file.' }) message!: string;
}

export class FileDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'report.pdf', description: 'Normalized display name (never a storage path)' })
  filename!: string;
  @ApiProperty({ example: 1048576, description: 'Plaintext size in bytes' }) size!: number;
  @ApiProperty({ example: 'application/pdf' }) contentType!: string;
  @ApiProperty({ enum: FILE_STATUSES }) status!: string;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'SHA-1 of the plaintext (hex); null until stored',
  })
  sha1!: string | null;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'SHA-256 of the plaintext (hex); null until stored',
  })
  sha256!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiPropertyOptional({ format: 'date-time' }) storedAt?: string;
  @ApiPropertyOptional({ description: 'Why processing failed or the integrity check that failed' })
  error?: string;
}

export class FilePageDto {
  @ApiProperty({ type: [FileDto] }) items!: FileDto[];
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'Pass as `cursor` for the next page; null on the last',
  })
  nextCursor!: string | null;
}

export class JobProgressDto {
  @ApiProperty({ enum: JOB_STAGES }) stage!: string;
  @ApiProperty() bytesDone!: number;
  @ApiProperty() bytesTotal!: number;
}

export class JobDto {
  @ApiProperty({ format: 'uuid', description: 'Equals the file id' }) id!: string;
  @ApiProperty({ format: 'uuid' }) fileId!: string;
  @ApiProperty({ enum: ['queued', 'active', 'completed', 'failed'] }) status!: string;
  @ApiProperty({ type: JobProgressDto }) progress!: JobProgressDto;
  @ApiPropertyOptional() error?: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiPropertyOptional({ format: 'date-time' }) finishedAt?: string;
}

export class JobPageDto {
  @ApiProperty({ type: [JobDto] }) items!: JobDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}

export class AcceptedFileDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() filename!: string;
  @ApiProperty() size!: number;
  @ApiProperty({ enum: ['queued'] }) status!: string;
  @ApiProperty({ format: 'uuid', description: 'Equals the file id' }) jobId!: string;
}

export class UploadAcceptedDto {
  @ApiProperty({ type: [AcceptedFileDto] }) files!: AcceptedFileDto[];
}

export class UploadBodyDto {
  @ApiProperty({
    type: 'array',
    items: { type: 'string', format: 'binary' },
    description: 'One or more files',
  })
  file!: unknown[];
}

export class CreateTokenDto {
  @ApiProperty({ example: 'alice' }) username!: string;
  @ApiProperty({ example: 'correct horse battery staple' }) password!: string;
  @ApiPropertyOptional({ example: 'laptop', maxLength: 100 }) name?: string;
  @ApiPropertyOptional({
    example: '30d',
    description: 'Lifetime (30d, 12h, 90m; at most API_TOKEN_MAX_LIFETIME); default: that cap, or never',
  })
  expiresIn?: string;
}

export class TokenCreatedDto {
  @ApiProperty({ example: 'tess_3q2…', description: 'Shown once; only its SHA-256 is stored' })
  token!: string;
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'null: never expires' })
  expiresAt!: string | null;
}

export class TokenDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) lastUsedAt!: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'null: never expires' })
  expiresAt!: string | null;
}

export class TokenListDto {
  @ApiProperty({ type: [TokenDto] }) tokens!: TokenDto[];
}

export class VerifyResultDto {
  @ApiProperty() ok!: boolean;
  @ApiProperty({ description: 'Plaintext bytes read and authenticated' }) checkedBytes!: number;
}

/** Documents error answers in the common shape. */
export function ApiErrors(...statuses: [number, string][]) {
  return applyDecorators(
    ...statuses.map(([status, description]) => ApiResponse({ status, description, type: ErrorDto })),
  );
}

/** Authenticated by a bearer token or by the session cookie (plus X-CSRF-Token on unsafe methods). */
export function ApiAuth() {
  return applyDecorators(
    ApiBearerAuth(),
    ApiCookieAuth('session'),
    ApiErrors(
      [401, 'Not authenticated, or the token is invalid or revoked'],
      [403, 'Session call without a valid X-CSRF-Token'],
    ),
  );
}

/** Serves the OpenAPI document at /api/docs.json and its UI at /api/docs. */
export function setupOpenApi(app: NestExpressApplication): void {
  const config = new DocumentBuilder()
    .setTitle('TESS API')
    .setDescription(
      'Tamper-proof Encrypted Secure Storage. Upload files (hashed with SHA-1/SHA-256 and encrypted with ' +
        'AES-256-GCM by the workers), follow their jobs, download verified plaintext. Authenticate with ' +
        '`Authorization: Bearer <token>` (create one with POST /api/v1/tokens) or the browser session ' +
        '(unsafe methods then need the `X-CSRF-Token` header). Errors are `{statusCode, error, message}`. ' +
        "Another user's ids answer 404.",
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'tess_… token from POST /api/v1/tokens' })
    .addCookieAuth('tess.sid', { type: 'apiKey', in: 'cookie' }, 'session')
    .build();
  const document = SwaggerModule.createDocument(app, config);
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs.json', raw: ['json'] });
}
