import { applyDecorators, type INestApplication } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiCookieAuth,
  ApiProperty,
  ApiPropertyOptional,
  ApiQuery,
  ApiResponse,
  DocumentBuilder,
  type OpenAPIObject,
  SwaggerModule,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { FILE_STATUSES, JOB_STAGES } from '#common';

/** The JSON error every API endpoint answers with. */
export class ErrorDto {
  @ApiProperty({ type: 'integer', example: 404 }) statusCode!: number;
  @ApiProperty({ example: 'Not Found' }) error!: string;
  @ApiProperty({ example: 'No such file.' }) message!: string;
}

export class DuplicateOfDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'report.pdf' }) filename!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
}

export class FileDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'report.pdf', description: 'Normalized display name (never a storage path)' })
  filename!: string;
  @ApiProperty({ type: 'integer', example: 1048576, description: 'Plaintext size in bytes' }) size!: number;
  @ApiProperty({ example: 'application/pdf', description: 'The type the client declared' })
  contentType!: string;
  @ApiProperty({
    nullable: true,
    type: String,
    example: 'application/pdf',
    description: 'The type the worker detected from the content; null until processed',
  })
  detectedType!: string | null;
  @ApiProperty({
    enum: FILE_STATUSES,
    description:
      '`rejected`: refused by the type policy; `infected`: malware found (nothing stored; `error` says why)',
  })
  status!: string;
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
  @ApiPropertyOptional({
    description:
      'Why processing failed, the rule that rejected the file, the malware signature found, or the integrity check that failed',
  })
  error?: string;
  @ApiPropertyOptional({
    description: 'The SHA-256 the client declared before sending (tus Upload-Metadata sha256)',
  })
  clientSha256?: string;
  @ApiPropertyOptional({
    description: "true once stored: the stored file's SHA-256 is the one the client declared",
  })
  clientVerified?: boolean;
  @ApiPropertyOptional({
    type: DuplicateOfDto,
    description: "Another of your stored files with the same SHA-256 (the oldest); never another user's",
  })
  duplicateOf?: DuplicateOfDto;
  @ApiPropertyOptional({
    description: 'A name or declared type that disagrees with the content (TYPE_MISMATCH=flag)',
  })
  typeWarning?: string;
  @ApiPropertyOptional({ description: 'The malware scanner (and signature database) that passed the file' })
  scannedWith?: string;
  @ApiPropertyOptional({ format: 'uuid', description: 'The folder the file is in; absent: the root' })
  folderId?: string;
  @ApiPropertyOptional({
    type: 'integer',
    description:
      'While `receiving` (an unfinished resumable upload): the bytes that have arrived, its tus Upload-Offset. DELETE cancels it.',
  })
  receivedBytes?: number;
  @ApiProperty({
    type: 'integer',
    description: 'The current version (the one this file serves); 1 until a second version is stored',
  })
  version!: number;
  @ApiProperty({ type: 'integer', description: 'Stored versions (0 until the first is stored)' })
  versionCount!: number;
}

export class FileVersionDto {
  @ApiProperty({ type: 'integer', example: 2 }) version!: number;
  @ApiProperty({ description: 'The version the file serves now' }) current!: boolean;
  @ApiProperty({ enum: ['stored', 'corrupt'] }) status!: string;
  @ApiProperty({ type: 'integer', description: 'Plaintext size in bytes' }) size!: number;
  @ApiProperty() contentType!: string;
  @ApiProperty({ nullable: true, type: String }) detectedType!: string | null;
  @ApiProperty() sha1!: string;
  @ApiProperty() sha256!: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'Who uploaded or restored it' })
  uploadedBy!: string | null;
  @ApiProperty({ format: 'date-time', description: 'When it was uploaded (or restored)' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) storedAt!: string;
  @ApiPropertyOptional({
    type: 'integer',
    description: "A restored copy of this version (it shares that version's encrypted object)",
  })
  restoredFrom?: number;
}

export class VersionUploadDto {
  @ApiProperty({ format: 'uuid', description: 'The upload row (and job id) of the new version' }) id!: string;
  @ApiProperty() filename!: string;
  @ApiProperty({ type: 'integer' }) size!: number;
  @ApiProperty({ enum: FILE_STATUSES }) status!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiPropertyOptional({ description: 'Why it failed or was refused (the current version is unchanged)' })
  error?: string;
}

export class FileVersionListDto {
  @ApiProperty({ format: 'uuid' }) fileId!: string;
  @ApiProperty({ type: 'integer' }) current!: number;
  @ApiProperty({ type: [FileVersionDto], description: 'Newest first' }) items!: FileVersionDto[];
  @ApiProperty({
    type: [VersionUploadDto],
    description: 'New versions still in the pipeline, or that failed or were refused (never current)',
  })
  uploads!: VersionUploadDto[];
}

export class VersionRestoredDto {
  @ApiProperty({ format: 'uuid' }) fileId!: string;
  @ApiProperty({ type: 'integer', description: 'The new current version' }) version!: number;
  @ApiProperty({ type: 'integer' }) restoredFrom!: number;
}

export class VersionUploadBodyDto {
  @ApiPropertyOptional({
    pattern: '^[0-9a-fA-F]{64}$',
    description: 'Optional hex SHA-256 (before the file)',
  })
  sha256?: string;
  @ApiProperty({ type: 'string', format: 'binary', description: 'The new content (one file)' })
  file!: unknown;
}

export class BulkDeleteItemDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({
    enum: ['deleted', 'not_found', 'failed'],
    description: "`not_found`: no such file, or another user's (the two look the same)",
  })
  status!: string;
  @ApiPropertyOptional({ description: 'Why a `failed` id could not be deleted' }) error?: string;
}

export class BulkDeleteResultDto {
  @ApiProperty({ type: 'integer' }) deleted!: number;
  @ApiProperty({ type: 'integer' }) notFound!: number;
  @ApiProperty({ type: 'integer' }) failed!: number;
  @ApiProperty({ type: [BulkDeleteItemDto], description: 'One entry per id, in the order sent' })
  results!: BulkDeleteItemDto[];
}

export class FolderDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'Reports' }) name!: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'null: in the root' })
  parentId!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
}

export class FolderCrumbDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
}

export class FolderDetailDto extends FolderDto {
  @ApiProperty({ type: [FolderCrumbDto], description: 'From the top folder down to this one (breadcrumbs)' })
  path!: FolderCrumbDto[];
}

export class FolderPageDto {
  @ApiProperty({ type: [FolderDto] }) items!: FolderDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}

export class FolderDeletedDto {
  @ApiProperty({ type: 'integer', description: 'Files deleted with it' }) files!: number;
  @ApiProperty({ type: 'integer', description: 'Folders deleted, itself included' }) folders!: number;
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
  @ApiProperty({ type: 'integer' }) bytesDone!: number;
  @ApiProperty({ type: 'integer' }) bytesTotal!: number;
}

export class JobDto {
  @ApiProperty({
    format: 'uuid',
    description: "The upload's id: the file id for a first upload, `upload.id` of a new version's 202",
  })
  id!: string;
  @ApiProperty({ format: 'uuid', description: 'The file the upload is for' }) fileId!: string;
  @ApiProperty({ enum: ['receiving', 'queued', 'active', 'completed', 'failed'] }) status!: string;
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
  @ApiProperty({ type: 'integer' }) size!: number;
  @ApiProperty({ enum: ['queued'] }) status!: string;
  @ApiProperty({ format: 'uuid', description: 'Equals the file id' }) jobId!: string;
}

export class UploadAcceptedDto {
  @ApiProperty({ type: [AcceptedFileDto] }) files!: AcceptedFileDto[];
}

export class UploadBodyDto {
  @ApiProperty({
    required: false,
    type: 'array',
    items: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
    description:
      'Optional: the hex SHA-256 of the file whose `file` part follows this field (send it before that part). ' +
      'The worker compares it with the stored plaintext: a match sets clientVerified, a difference fails the ' +
      'file as client-hash-mismatch; a malformed value is 400 and nothing is stored.',
  })
  sha256?: string[];
  @ApiProperty({
    type: 'array',
    items: { type: 'string', format: 'binary' },
    description: 'One or more files',
  })
  file!: unknown[];
}

export class VersionAcceptedDto {
  @ApiProperty({ format: 'uuid' }) fileId!: string;
  @ApiProperty({ type: AcceptedFileDto, description: 'The upload of the new version' })
  upload!: AcceptedFileDto;
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
  @ApiProperty({ type: 'integer', description: 'Plaintext bytes read and authenticated' })
  checkedBytes!: number;
}

export class LivenessDto {
  @ApiProperty({ enum: ['ok'] }) status!: string;
}

const readinessChecks = {
  type: 'object',
  additionalProperties: { type: 'string' },
  example: { database: 'ok', redis: 'ok', objectStore: 'unavailable: connection refused' },
  description: 'Each dependency: `ok` or `unavailable: <reason>`',
} as const;

export class ReadinessDto {
  @ApiProperty({ enum: ['ok', 'unavailable'] }) status!: string;
  @ApiProperty(readinessChecks) checks!: Record<string, string>;
}

export class NotReadyDto extends ErrorDto {
  @ApiProperty({ enum: ['unavailable'] }) status!: string;
  @ApiProperty(readinessChecks) checks!: Record<string, string>;
}

/** @nestjs/swagger exports OpenAPIObject but not its SchemaObject. */
type SchemaObject = Exclude<
  NonNullable<NonNullable<OpenAPIObject['components']>['schemas']>[string],
  { $ref: string }
>;

/** A zod schema as OpenAPI 3.0 JSON Schema, describing what a client may send (`io: 'input'`). */
function inputSchema(schema: z.ZodType): SchemaObject {
  return z.toJSONSchema(schema, {
    io: 'input',
    target: 'openapi-3.0',
    // A query integer is parsed strictly from its digits (a string schema); clients send an integer.
    override: ({ zodSchema, jsonSchema }) => {
      const integer = (z.globalRegistry.get(zodSchema) as { queryInteger?: object } | undefined)
        ?.queryInteger;
      if (!integer) return;
      for (const key of Object.keys(jsonSchema)) delete jsonSchema[key];
      Object.assign(jsonSchema, { type: 'integer', ...integer });
    },
  }) as SchemaObject;
}

/** Request bodies validated with zod, by component name: createOpenApiDocument adds them to the document. */
const bodySchemas = new Map<string, z.ZodType>();

/** Documents a JSON body from the zod schema the handler parses it with, so the two cannot drift. */
export function ApiBodyFrom(name: string, schema: z.ZodType) {
  bodySchemas.set(name, schema);
  return ApiBody({ schema: { $ref: `#/components/schemas/${name}` } });
}

/** Documents query parameters from the zod object schema the handler parses them with. */
export function ApiQueryFrom(schema: z.ZodObject, descriptions: Record<string, string> = {}) {
  const json = inputSchema(schema);
  const required = new Set(json.required ?? []);
  return applyDecorators(
    ...Object.entries(json.properties ?? {}).map(([name, property]) =>
      ApiQuery({
        name,
        required: required.has(name),
        schema: property as SchemaObject,
        ...(descriptions[name] ? { description: descriptions[name] } : {}),
      }),
    ),
  );
}

/** Public routes: no credentials (an explicit empty `security`, which generators and linters read). */
export const PUBLIC: { security: [] } = { security: [] };

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

/**
 * The OpenAPI document of the gateway's routes. Needs only the module graph, not running providers, so
 * scripts/openapi.ts builds it from an app in preview mode (no PostgreSQL, Redis or S3) and the
 * gateway serves the same document.
 */
export function createOpenApiDocument(app: INestApplication): OpenAPIObject {
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
    .addServer('{origin}', 'The gateway (PUBLIC_URL)', {
      origin: { default: 'http://127.0.0.1:3000', description: 'Scheme, host and port of the gateway' },
    })
    // addSecurity, not addBearerAuth: that one claims bearerFormat JWT, and TESS tokens are opaque.
    .addSecurity('bearer', {
      type: 'http',
      scheme: 'bearer',
      description: 'Opaque tess_… token from POST /api/v1/tokens',
    })
    .addCookieAuth('tess.sid', { type: 'apiKey', in: 'cookie' }, 'session')
    .build();
  const document = SwaggerModule.createDocument(app, config, {
    operationIdFactory: (_controllerKey, methodKey) => methodKey,
  });
  const schemas = { ...document.components?.schemas };
  for (const [name, schema] of bodySchemas) schemas[name] = inputSchema(schema);
  document.components = {
    ...document.components,
    schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
  };
  return document;
}

/**
 * Serves the OpenAPI document at /api/docs.json and its UI at /api/docs. The UI is our own page
 * (views/pages/api-docs.hbs) rather than @nestjs/swagger's, whose inline `<style>` blocks and styled icon
 * sprite the CSP (style-src 'self') blocks, leaving console errors and a blank band: Swagger UI's files
 * from /assets/swagger-ui/, a stylesheet and an init script from /static/, the base layout (no top bar,
 * whose logo carries an inline style) and no online validator badge (a third-party image).
 */
export function setupOpenApi(app: INestApplication): void {
  SwaggerModule.setup('api/docs', app, createOpenApiDocument(app), {
    jsonDocumentUrl: 'api/docs.json',
    raw: ['json'],
    ui: false,
  });
  app.getHttpAdapter().get('/api/docs', (_req: Request, res: Response) => {
    res.render('pages/api-docs', { layout: false });
  });
}
