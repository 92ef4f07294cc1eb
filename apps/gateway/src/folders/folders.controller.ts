import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpException,
  Param,
  ParseUUIDPipe,
  Patch,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { FolderRepository, InvalidCursorError } from '#common';
import { AccessPolicy } from '../access/access.policy.js';
import { CurrentPrincipal } from '../access/principal.decorator.js';
import type { UserPrincipal } from '../access/principal.js';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { checkedName } from '../files/display-name.js';
import { folderIdSchema, folderRefSchema } from '../files/file-schemas.js';
import {
  ApiAuth,
  ApiBodyFrom,
  ApiErrors,
  ApiQueryFrom,
  FolderDeletedDto,
  FolderDetailDto,
  FolderDto,
  FolderPageDto,
} from '../http/openapi.js';
import { pageQuerySchema, parseOrThrow } from '../http/validation.js';
import { FoldersService, folderView } from './folders.service.js';

const uuid = new ParseUUIDPipe({
  version: '4',
  exceptionFactory: () => new HttpException('No such folder.', 404),
});

const nameField = z
  .string({ message: 'must be a string' })
  .meta({ description: '1-255 characters; no / \\ control or bidi characters, not . or ..' });

export const createFolderSchema = z
  .object({
    name: nameField,
    parentId: folderIdSchema
      .optional()
      .meta({ description: 'The folder to create it in; null or absent: the root' }),
  })
  .strict();

export const updateFolderSchema = z
  .object({
    name: nameField.optional(),
    parentId: folderIdSchema.optional().meta({ description: 'The folder to move it into; null: the root' }),
  })
  .strict()
  .refine((v) => v.name !== undefined || v.parentId !== undefined, {
    message: 'give name, parentId or both',
  });

export const listFoldersSchema = pageQuerySchema.extend({
  parentId: folderRefSchema.optional().meta({ description: '`root` (the default) or a folder id' }),
});

export const deleteFolderSchema = z
  .object({
    recursive: z
      .enum(['true', 'false'], { message: 'recursive must be true or false' })
      .optional()
      .meta({ description: 'true: delete everything in it too (files through the normal file deletion)' }),
  })
  .strict();

/** Folder cursors: base64url of `[name, id]` in JSON (names in their lower-cased order). */
function decodeFolderCursor(cursor: string): { name: string; id: string } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === 'string' &&
      typeof parsed[1] === 'string' &&
      /^[0-9a-f-]{36}$/.test(parsed[1]) &&
      Buffer.from(JSON.stringify(parsed)).toString('base64url') === cursor.replace(/=+$/, '')
    ) {
      return { name: parsed[0], id: parsed[1] };
    }
  } catch {
    // falls through to the error below
  }
  throw new InvalidCursorError();
}

@ApiTags('folders')
@ApiAuth()
@Controller('api/v1/folders')
@UseGuards(ApiAuthGuard)
export class FoldersController {
  constructor(
    private readonly service: FoldersService,
    private readonly folders: FolderRepository,
    private readonly access: AccessPolicy,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'The folders directly in a folder (default: the root), by name',
    operationId: 'listFolders',
  })
  @ApiQueryFrom(listFoldersSchema, { limit: 'Page size', cursor: 'nextCursor of the previous page' })
  @ApiResponse({ status: 200, type: FolderPageDto })
  @ApiErrors([400, 'Invalid parentId, limit or cursor'], [404, 'No such folder of yours'])
  async list(@CurrentPrincipal() principal: UserPrincipal, @Query() query: unknown) {
    const { parentId, limit, cursor } = parseOrThrow(listFoldersSchema, query);
    if (parentId) await this.access.folder(principal, parentId);
    const rows = await this.folders.children(
      principal.userId,
      parentId ?? null,
      limit + 1,
      cursor ? decodeFolderCursor(cursor) : undefined,
    );
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return {
      items: items.map(folderView),
      nextCursor:
        rows.length > limit && last
          ? Buffer.from(JSON.stringify([last.name, last.id])).toString('base64url')
          : null,
    };
  }

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a folder', operationId: 'createFolder' })
  @ApiBodyFrom('CreateFolderRequest', createFolderSchema)
  @ApiResponse({ status: 201, type: FolderDto })
  @ApiErrors(
    [400, 'A refused name (empty, ".", "..", "/", control or bidi characters, over 255)'],
    [404, 'No such parent folder of yours'],
    [409, 'A folder of that name is already there (case-insensitively)'],
  )
  async create(@CurrentPrincipal() principal: UserPrincipal, @Req() req: Request, @Body() body: unknown) {
    const input = parseOrThrow(createFolderSchema, body);
    const name = checkedName(input.name, 'folder');
    if (input.parentId) await this.access.folder(principal, input.parentId);
    return folderView(await this.service.create(principal.userId, input.parentId ?? null, name, req.ip));
  }

  @Get(':id')
  @ApiOperation({ summary: 'One folder, with its path from the top (breadcrumbs)', operationId: 'getFolder' })
  @ApiResponse({ status: 200, type: FolderDetailDto })
  @ApiErrors([404, 'No such folder of yours'])
  async get(@CurrentPrincipal() principal: UserPrincipal, @Param('id', uuid) id: string) {
    const folder = await this.access.folder(principal, id);
    return { ...folderView(folder), path: await this.folders.path(principal.userId, folder.id) };
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Rename and/or move a folder (never into itself)', operationId: 'updateFolder' })
  @ApiBodyFrom('UpdateFolderRequest', updateFolderSchema)
  @ApiResponse({ status: 200, type: FolderDto })
  @ApiErrors(
    [400, 'A refused name or a bad body'],
    [404, 'No such folder of yours (or target folder)'],
    [409, 'The name is taken there, or the move would put the folder inside itself'],
  )
  async update(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Param('id', uuid) id: string,
    @Body() body: unknown,
  ) {
    const input = parseOrThrow(updateFolderSchema, body);
    const folder = await this.access.folder(principal, id);
    const name = input.name === undefined ? undefined : checkedName(input.name, 'folder');
    if (input.parentId) await this.access.folder(principal, input.parentId);
    return folderView(await this.service.update(folder, { name, parentId: input.parentId }, req.ip));
  }

  @Delete(':id')
  @ApiOperation({
    summary: 'Delete an empty folder, or with recursive=true everything in it',
    operationId: 'deleteFolder',
  })
  @ApiQueryFrom(deleteFolderSchema)
  @ApiResponse({ status: 200, type: FolderDeletedDto })
  @ApiErrors([404, 'No such folder of yours'], [409, 'The folder is not empty and recursive is not true'])
  async delete(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Param('id', uuid) id: string,
    @Query() query: unknown,
  ) {
    const { recursive } = parseOrThrow(deleteFolderSchema, query);
    const folder = await this.access.folder(principal, id);
    return this.service.delete(folder, recursive === 'true', req.ip);
  }
}
