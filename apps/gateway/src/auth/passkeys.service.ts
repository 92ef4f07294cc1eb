import { Inject, Injectable, UnprocessableEntityException } from '@nestjs/common';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
  VerifiedRegistrationResponse,
} from '@simplewebauthn/server';
import type { Redis } from 'ioredis';
import {
  AuditRepository,
  MAX_PASSKEYS,
  type MfaPasskeyEntity,
  MfaRepository,
  TESS_CONFIG,
  type TessConfig,
} from '#common';
import { REDIS } from '../infra/redis.module.js';
import { InvalidSecondFactorError, MfaService, type SecondFactorVia } from './mfa.service.js';

/**
 * SimpleWebAuthn and its ASN.1/X.509 stack, loaded by the first passkey request rather than at start:
 * most gateways never see one, and it holds about 4 MiB of heap once loaded.
 */
const webauthn = () => import('@simplewebauthn/server');

/** How long a WebAuthn challenge may be answered (the browser's own prompt times out at the same). */
export const CHALLENGE_TTL_MS = 120_000;

/**
 * The COSE algorithms accepted: EdDSA, ES256, RS256 (what authenticators use). Given explicitly: the
 * library's default probes Node's experimental post-quantum Web Crypto, which warns on stderr.
 */
const ALGORITHMS = [-8, -7, -257];

/** What a challenge was made for: it answers only that. */
type Ceremony = 'register' | 'authenticate';

/** The passkey could not be registered: 422 with a message for the user. */
export class PasskeyRegistrationError extends UnprocessableEntityException {}

/** The transports WebAuthn names; anything else a browser reports is dropped. */
const TRANSPORTS = new Set<string>(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);

const transportsOf = (row: MfaPasskeyEntity): string[] =>
  row.transports.split(',').filter((t) => TRANSPORTS.has(t));

/**
 * Passkeys (WebAuthn, docs/security.md item 30a) with SimpleWebAuthn: registration and the second
 * sign-in step. The relying party is PUBLIC_URL: its host name is the RP id and its origin the only
 * origin accepted. Each challenge is random, kept in Redis for CHALLENGE_TTL_MS under the session id
 * and the ceremony it was made for, and taken (GETDEL) by the first answer, right or wrong: it is
 * single-use and answers only the session that asked for it. The counter of each credential is stored
 * and must grow (SimpleWebAuthn refuses a lower one: a cloned authenticator).
 *
 * Unlike codes, passkey attempts are not throttled: an assertion is a signature over a fresh challenge
 * that cannot be guessed; failures are audited like wrong codes.
 */
@Injectable()
export class PasskeysService {
  private readonly rpId: string;
  private readonly origin: string;

  constructor(
    private readonly mfa: MfaRepository,
    private readonly factors: MfaService,
    private readonly audit: AuditRepository,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
  ) {
    const url = new URL(config.http.publicUrl);
    this.rpId = url.hostname;
    this.origin = url.origin;
  }

  list(userId: string): Promise<MfaPasskeyEntity[]> {
    return this.mfa.listPasskeys(userId);
  }

  private challengeKey(ceremony: Ceremony, sessionId: string): string {
    return `${this.config.redis.prefix}:webauthn:${ceremony}:${sessionId}`;
  }

  private async remember(ceremony: Ceremony, sessionId: string, userId: string, challenge: string) {
    await this.redis.set(
      this.challengeKey(ceremony, sessionId),
      JSON.stringify({ userId, challenge }),
      'PX',
      CHALLENGE_TTL_MS,
    );
  }

  /** The session's challenge for this ceremony and user, taken (a second answer finds none). */
  private async take(ceremony: Ceremony, sessionId: string, userId: string): Promise<string | null> {
    const raw = await this.redis.getdel(this.challengeKey(ceremony, sessionId));
    if (!raw) return null;
    const stored = JSON.parse(raw) as { userId: string; challenge: string };
    return stored.userId === userId ? stored.challenge : null;
  }

  /** Options for navigator.credentials.create(); the user's passkeys are excluded (no duplicates). */
  async registrationOptions(
    user: Express.User,
    sessionId: string,
  ): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await this.mfa.listPasskeys(user.id);
    if (existing.length >= MAX_PASSKEYS)
      throw new PasskeyRegistrationError(`You have ${MAX_PASSKEYS} passkeys, the most an account may have.`);
    const { generateRegistrationOptions } = await webauthn();
    const options = await generateRegistrationOptions({
      rpName: 'TESS',
      rpID: this.rpId,
      userName: user.username,
      // The user handle: the account's UUID bytes, which say nothing about the person.
      userID: Uint8Array.from(Buffer.from(user.id.replace(/-/g, ''), 'hex')),
      timeout: CHALLENGE_TTL_MS,
      attestationType: 'none',
      excludeCredentials: existing.map((row) => ({ id: row.credentialId, transports: transportsOf(row) })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      supportedAlgorithmIDs: ALGORITHMS,
    });
    await this.remember('register', sessionId, user.id, options.challenge);
    return options;
  }

  /**
   * Verifies the browser's registration answer and stores the passkey under `name`; when it is the
   * account's first factor, its recovery codes come with it (shown once). Throws
   * PasskeyRegistrationError (no challenge, a wrong one, a failed verification, a duplicate).
   */
  async register(
    user: Express.User,
    sessionId: string,
    input: { response: RegistrationResponseJSON; name: string },
    ip: string,
  ): Promise<{ id: string; name: string; recoveryCodes: string[] | null }> {
    const { response, name } = input;
    const challenge = await this.take('register', sessionId, user.id);
    if (!challenge)
      throw new PasskeyRegistrationError('The passkey request expired or was already answered. Try again.');
    const { verifyRegistrationResponse } = await webauthn();
    let verification: VerifiedRegistrationResponse;
    try {
      verification = await verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpId,
        // A second factor after the password: the authenticator's presence is the factor.
        requireUserVerification: false,
        supportedAlgorithmIDs: ALGORITHMS,
      });
    } catch (error) {
      throw new PasskeyRegistrationError(`The passkey could not be verified: ${(error as Error).message}`);
    }
    if (!verification.verified) throw new PasskeyRegistrationError('The passkey could not be verified.');
    const info = verification.registrationInfo;
    const stored = await this.mfa.addPasskey({
      userId: user.id,
      credentialId: info.credential.id,
      publicKey: Buffer.from(info.credential.publicKey),
      counter: info.credential.counter,
      transports: (info.credential.transports ?? []).filter((t) => TRANSPORTS.has(t)),
      name,
      deviceType: info.credentialDeviceType,
      backedUp: info.credentialBackedUp,
    });
    if (!stored)
      throw new PasskeyRegistrationError(
        `This passkey is already registered, or you have ${MAX_PASSKEYS} passkeys already.`,
      );
    await this.audit.record({
      action: 'mfa.passkey_added',
      userId: user.id,
      ip,
      details: { passkeyId: stored.id, name, deviceType: stored.deviceType },
    });
    const recoveryCodes = await this.factors.recoveryCodesForFirstPasskey(user.id);
    return { id: stored.id, name: stored.name, recoveryCodes };
  }

  /** Options for navigator.credentials.get() for the user's passkeys; null when the user has none. */
  async authenticationOptions(
    user: Express.User,
    sessionId: string,
  ): Promise<PublicKeyCredentialRequestOptionsJSON | null> {
    const passkeys = await this.mfa.listPasskeys(user.id);
    if (passkeys.length === 0) return null;
    const { generateAuthenticationOptions } = await webauthn();
    const options = await generateAuthenticationOptions({
      rpID: this.rpId,
      allowCredentials: passkeys.map((row) => ({ id: row.credentialId, transports: transportsOf(row) })),
      timeout: CHALLENGE_TTL_MS,
      userVerification: 'preferred',
    });
    await this.remember('authenticate', sessionId, user.id, options.challenge);
    return options;
  }

  /**
   * Checks an assertion as the second factor: the session's challenge, one of the user's passkeys,
   * the signature and a growing counter. Audited like a code (`mfa.succeeded` / `mfa.failed` with
   * `factor: 'passkey'`). Throws InvalidSecondFactorError.
   */
  async authenticate(
    user: Express.User,
    sessionId: string,
    response: AuthenticationResponseJSON,
    ip: string,
    via: SecondFactorVia,
  ): Promise<MfaPasskeyEntity> {
    const failed = async (reason: string) => {
      await this.audit.record({
        action: 'mfa.failed',
        userId: user.id,
        ip,
        details: { via, factor: 'passkey', reason },
      });
      return new InvalidSecondFactorError(
        'The passkey was not accepted. Try again, or use a code from your authenticator app or a recovery code.',
      );
    };
    const challenge = await this.take('authenticate', sessionId, user.id);
    if (!challenge) throw await failed('no challenge');
    const passkey = await this.mfa.findPasskeyByCredential(user.id, response.id);
    if (!passkey) throw await failed('unknown passkey');
    const { verifyAuthenticationResponse } = await webauthn();
    let newCounter: number;
    try {
      const result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpId,
        credential: {
          id: passkey.credentialId,
          publicKey: Uint8Array.from(passkey.publicKey),
          counter: Number(passkey.counter),
          transports: transportsOf(passkey),
        },
        requireUserVerification: false,
      });
      if (!result.verified) throw new Error('not verified');
      newCounter = result.authenticationInfo.newCounter;
    } catch (error) {
      throw await failed((error as Error).message.slice(0, 200));
    }
    if (!(await this.mfa.usePasskey(passkey.id, passkey.counter, newCounter)))
      throw await failed('used concurrently');
    await this.audit.record({
      action: 'mfa.succeeded',
      userId: user.id,
      ip,
      details: { via, factor: 'passkey', passkeyId: passkey.id },
    });
    return passkey;
  }

  async rename(user: Express.User, id: string, name: string, ip: string): Promise<boolean> {
    if (!(await this.mfa.renamePasskey(user.id, id, name))) return false;
    await this.audit.record({
      action: 'mfa.passkey_renamed',
      userId: user.id,
      ip,
      details: { passkeyId: id, name },
    });
    return true;
  }

  /** Removes one of the user's passkeys (the caller checked the password); false when there is none. */
  async remove(user: Express.User, id: string, ip: string): Promise<boolean> {
    const name = await this.mfa.removePasskey(user.id, id);
    if (name === null) return false;
    await this.audit.record({
      action: 'mfa.passkey_removed',
      userId: user.id,
      ip,
      details: { passkeyId: id, name },
    });
    return true;
  }
}
