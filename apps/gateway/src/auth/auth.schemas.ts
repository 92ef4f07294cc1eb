import { z } from 'zod';
import { PASSWORD_MAX_LENGTH } from './password.service.js';

/** Usernames: 3-80 characters of ASCII letters, digits, `.`, `_` and `-`; unique case-insensitively. */
export const USERNAME_PATTERN = /^[A-Za-z0-9._-]{3,80}$/;

export const usernameSchema = z
  .string({ message: 'Username is required.' })
  .trim()
  .regex(USERNAME_PATTERN, 'Username must be 3-80 characters: letters, digits, dot, underscore or hyphen.');

export const registerSchema = z.object({
  username: usernameSchema,
  email: z
    .string({ message: 'Email is required.' })
    .trim()
    .max(254, 'Email must be at most 254 characters.')
    .pipe(z.email({ message: 'Enter a valid email address.' })),
  // The length and common-password policy runs after the other fields pass; an empty field is flagged
  // with them so one submission shows every missing field.
  password: z.string({ message: 'Password is required.' }).min(1, 'Password is required.'),
});

/** Login accepts any strings (bounded) so that validation never tells users apart from non-users. */
export const loginSchema = z.object({
  username: z.string({ message: 'Username is required.' }).trim().min(1, 'Username is required.').max(200),
  password: z
    .string({ message: 'Password is required.' })
    .min(1, 'Password is required.')
    .max(PASSWORD_MAX_LENGTH * 4),
});
