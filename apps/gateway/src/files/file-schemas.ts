import { z } from 'zod';
import { FILE_SORTS, FILE_STATUSES } from '#common';
import { pageQuerySchema } from '../http/validation.js';
import { MAX_BULK_IDS } from './bulk-files.service.js';

const UUID_V4 = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$/;

/** A folder id, or `root` for the top of the tree (query parameters). */
export const folderRefSchema = z
  .string({ message: 'must be root or a folder id' })
  .regex(new RegExp(`^(root|${UUID_V4.source.slice(1, -1)})$`), 'must be root or a folder id')
  .transform((v) => (v === 'root' ? null : v.toLowerCase()));

/** A folder id or null for the root (JSON bodies). */
export const folderIdSchema = z
  .string({ message: 'must be a folder id or null' })
  .regex(UUID_V4, 'must be a folder id or null')
  .transform((v) => v.toLowerCase())
  .nullable();

/**
 * GET /api/v1/files: the page parameters plus search, folder, status and order. Unknown parameters are
 * ignored, as before (a cache-busting `_=` from a client must not break its list).
 */
export const fileListQuerySchema = pageQuerySchema.extend({
  q: z
    .string({ message: 'q must be one piece of text' })
    .max(255, 'q must be at most 255 characters')
    .optional()
    .meta({ description: 'Case-insensitive substring of the name' }),
  folderId: folderRefSchema
    .optional()
    .meta({ description: '`root` or a folder id: only the files directly in it; absent: every folder' }),
  status: z.enum(FILE_STATUSES, { message: `status must be one of ${FILE_STATUSES.join(', ')}` }).optional(),
  sort: z.enum(FILE_SORTS, { message: `sort must be one of ${FILE_SORTS.join(', ')}` }).default('createdAt'),
  order: z
    .enum(['asc', 'desc'], { message: 'order must be asc or desc' })
    .optional()
    .meta({ description: 'Default: desc for createdAt and size, asc for name' }),
});

/** PATCH /api/v1/files/:id: a new name, a new folder, or both. */
export const patchFileSchema = z
  .object({
    filename: z
      .string({ message: 'must be a string' })
      .optional()
      .meta({ description: 'The new name: 1-255 characters, no / \\ control or bidi characters' }),
    folderId: folderIdSchema
      .optional()
      .meta({ description: 'The folder to move the file into; null: the root' }),
  })
  .strict()
  .refine((v) => v.filename !== undefined || v.folderId !== undefined, {
    message: 'give filename, folderId or both',
  });

/** A list of 1-1000 distinct file ids: bulk delete and the ZIP download. */
export const bulkIdsSchema = z
  .object({
    ids: z
      .array(z.string().regex(UUID_V4, 'each id must be a file id'), {
        message: 'ids must be a list of file ids',
      })
      .min(1, 'ids must hold at least one file id')
      .max(MAX_BULK_IDS, `at most ${MAX_BULK_IDS} ids per request`)
      .transform((ids) => ids.map((id) => id.toLowerCase()))
      .refine((ids) => new Set(ids).size === ids.length, 'ids must not repeat'),
  })
  .strict();

/**
 * The body of a ZIP request: JSON `{ids}`, or the dashboard's form (`ids` comma-separated and its `_csrf`
 * field, which the CSRF guard has already checked), so the browser streams the download to disk itself.
 */
export function bulkIdsInput(body: unknown): unknown {
  if (!body || typeof body !== 'object') return body;
  const { _csrf, ...rest } = body as Record<string, unknown>;
  return typeof rest.ids === 'string' ? { ...rest, ids: rest.ids.split(',').filter(Boolean) } : rest;
}
