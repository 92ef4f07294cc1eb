import { HttpException, ParseUUIDPipe } from '@nestjs/common';
import { z } from 'zod';
import { durationSchema } from '#common';
import { emailSchema } from '../auth/auth.schemas.js';
import { INVITE_MAX_EXPIRY_MS } from '../auth/invites.service.js';

/** An id in a path: not a UUID answers like an unknown one. */
export const uuidParam = (what: string) =>
  new ParseUUIDPipe({ version: '4', exceptionFactory: () => new HttpException(`No such ${what}.`, 404) });

/** BullMQ job ids TESS makes: a file id, or `delete-user-<user id>`. */
export const JOB_ID = /^(delete-user-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const adminUsersQuerySchema = z.object({
  q: z.string().trim().max(100, 'q must be at most 100 characters').optional(),
  page: z.coerce.number().int('page must be a whole number').min(1).max(10_000).default(1),
});

const quotaValue = (what: string) =>
  z
    .number({ message: `${what} must be a whole number of at least 0, or null` })
    .int(`${what} must be a whole number of at least 0, or null`)
    .min(0, `${what} must be a whole number of at least 0, or null`)
    .max(Number.MAX_SAFE_INTEGER)
    .nullable();

export const quotaSchema = z
  .object({
    quotaBytes: quotaValue('quotaBytes').meta({
      description: 'Bytes the user may store; null: QUOTA_BYTES applies; 0: no limit',
    }),
    quotaFiles: quotaValue('quotaFiles')
      .refine((v) => v === null || v <= 2_147_483_647, 'quotaFiles is too large')
      .meta({ description: 'Files the user may keep; null: QUOTA_FILES applies; 0: no limit' }),
  })
  .strict();

export const deleteUserQuerySchema = z.object({
  confirm: z
    .string({ message: 'confirm (the username, typed again) is required' })
    .min(1, 'confirm (the username, typed again) is required')
    .max(80),
});

export const createInviteSchema = z
  .object({
    email: emailSchema.optional().meta({ description: 'Only this address may register with the invite' }),
    expiresIn: z
      .string({ message: 'must be a duration such as 12h or 7d' })
      .pipe(durationSchema)
      .pipe(z.number().min(3_600_000, 'must be at least 1h').max(INVITE_MAX_EXPIRY_MS, 'must be at most 90d'))
      .optional()
      .meta({ description: 'How long the link works: 1h to 90d (default INVITE_EXPIRY)' }),
  })
  .strict();
