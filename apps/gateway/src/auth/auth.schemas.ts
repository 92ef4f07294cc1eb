import { z } from 'zod';
import { PASSWORD_MAX_LENGTH } from './password.service.js';

/** Usernames: 3-80 characters of ASCII letters, digits, `.`, `_` and `-`; unique case-insensitively. */
export const USERNAME_PATTERN = /^[A-Za-z0-9._-]{3,80}$/;

export const usernameSchema = z
  .string({ message: 'Username is required.' })
  .trim()
  .regex(USERNAME_PATTERN, 'Username must be 3-80 characters: letters, digits, dot, underscore or hyphen.');

export const emailSchema = z
  .string({ message: 'Email is required.' })
  .trim()
  .max(254, 'Email must be at most 254 characters.')
  .pipe(z.email({ message: 'Enter a valid email address.' }));

export const registerSchema = z.object({
  username: usernameSchema,
  email: emailSchema,
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

/** A password field whose policy (passwordProblem) is checked after the other fields pass. */
const passwordField = (label: string) =>
  z
    .string({ message: `${label} is required.` })
    .min(1, `${label} is required.`)
    .max(PASSWORD_MAX_LENGTH * 4);

const sameNewPassword = (d: { newPassword: string; confirmPassword: string }) =>
  d.newPassword === d.confirmPassword;
const SAME_NEW_PASSWORD = { path: ['confirmPassword'], message: 'The two new passwords are not the same.' };

/** `POST /api/v1/account/password`. */
export const changePasswordSchema = z.object({
  currentPassword: passwordField('Current password'),
  newPassword: passwordField('New password'),
});

/** The account page's form: the API's fields and the new password typed twice. */
export const changePasswordFormSchema = changePasswordSchema
  .extend({ confirmPassword: z.string({ message: 'Type the new password again.' }) })
  .refine(sameNewPassword, SAME_NEW_PASSWORD);

export const forgotPasswordSchema = z.object({ email: emailSchema });

export const resetPasswordSchema = z
  .object({
    token: z.string({ message: 'The reset link is incomplete.' }).max(200),
    newPassword: passwordField('New password'),
    confirmPassword: z.string({ message: 'Type the new password again.' }),
  })
  .refine(sameNewPassword, SAME_NEW_PASSWORD);

const b64url = z
  .string()
  .max(20_000)
  .regex(/^[A-Za-z0-9_-]*$/, 'must be base64url');

/**
 * The browser's WebAuthn answer as @simplewebauthn/browser sends it (its shape only: SimpleWebAuthn
 * verifies the content). Bounded by the 64 KiB body limit and these lengths.
 */
const webAuthnResponse = z.object({
  id: b64url.max(1400),
  rawId: b64url.max(1400),
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()),
});

/** Registration: the answer of navigator.credentials.create() and the name the user gave the passkey. */
export const passkeyRegistrationSchema = z.object({
  name: z
    .string({ message: 'Name the passkey.' })
    .trim()
    .min(1, 'Name the passkey.')
    .max(100, 'A passkey name is at most 100 characters.'),
  response: webAuthnResponse.extend({
    response: z.object({
      clientDataJSON: b64url,
      attestationObject: b64url,
      transports: z.array(z.string().max(20)).max(10).optional(),
      authenticatorData: b64url.optional(),
      publicKey: b64url.optional(),
      publicKeyAlgorithm: z.number().int().optional(),
    }),
  }),
});

/** The second sign-in step: the answer of navigator.credentials.get(). */
export const passkeyAssertionSchema = z.object({
  response: webAuthnResponse.extend({
    response: z.object({
      clientDataJSON: b64url,
      authenticatorData: b64url,
      signature: b64url,
      userHandle: b64url.optional(),
    }),
  }),
});

/** A passkey's new name (the security page's rename form). */
export const passkeyNameSchema = z.object({
  passkeyName: z
    .string({ message: 'Name the passkey.' })
    .trim()
    .min(1, 'Name the passkey.')
    .max(100, 'A passkey name is at most 100 characters.'),
});
