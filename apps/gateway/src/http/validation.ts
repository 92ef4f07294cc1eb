import { BadRequestException } from '@nestjs/common';
import { z } from 'zod';

/** Field name -> first readable problem, for re-rendering forms. */
export type FieldErrors = Record<string, string>;

export function fieldErrors(error: z.ZodError): FieldErrors {
  const out: FieldErrors = {};
  for (const issue of error.issues) {
    const key = String(issue.path[0] ?? 'form');
    out[key] ??= issue.message;
  }
  return out;
}

/** Parses `input` or throws 400 with every problem in one readable message. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) =>
    i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message,
  );
  throw new BadRequestException(problems.join('; '));
}

/** `?limit=&cursor=` of the listings; the cursor's content is checked where it is decoded (file-cursor.ts). */
export const pageQuerySchema = z.object({
  // A string, not z.coerce: `limit[]=1` would coerce from an array, `1e2` or ` 5` from other spellings.
  limit: z
    .string({ message: 'limit must be 1-100' })
    .regex(/^\d{1,3}$/, 'limit must be 1-100')
    .optional()
    .transform((v) => (v === undefined ? 25 : Number(v)))
    .pipe(z.number().min(1, 'limit must be 1-100').max(100, 'limit must be 1-100'))
    // Documented as what clients send: an integer query parameter (see inputSchema in openapi.ts).
    .meta({ queryInteger: { minimum: 1, maximum: 100, default: 25 } }),
  cursor: z.string().max(200).optional(),
});
