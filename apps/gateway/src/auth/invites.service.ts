import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import {
  AuditRepository,
  type InviteEntity,
  type InviteProblem,
  InviteRepository,
  TESS_CONFIG,
  type TessConfig,
} from '#common';
import { hashToken } from '../tokens/tokens.service.js';

/** Why /register refuses, as its page says it. */
export type RegistrationRefusal = 'closed' | 'invite-required' | InviteProblem;

/** The longest an admin may make an invite live. */
export const INVITE_MAX_EXPIRY_MS = 90 * 86_400_000;

/** An invite link and what it allows, as the admin area and API show it (never the token again). */
export function inviteView(invite: InviteEntity) {
  const now = Date.now();
  const state = invite.revokedAt
    ? 'revoked'
    : invite.usedAt
      ? 'used'
      : invite.expiresAt.getTime() <= now
        ? 'expired'
        : 'open';
  return {
    id: invite.id,
    email: invite.email,
    createdAt: invite.createdAt,
    expiresAt: invite.expiresAt,
    usedAt: invite.usedAt,
    state,
  };
}
export type InviteView = ReturnType<typeof inviteView>;

/**
 * REGISTRATION=open|invite|closed and the invite links (docs/security.md item 37). An invite token is
 * 256 random bits, given out once in its link and kept as its SHA-256; it is taken atomically by the
 * registration it admits, so two registrations racing for one link cannot both succeed.
 */
@Injectable()
export class InvitesService {
  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly invites: InviteRepository,
    private readonly audit: AuditRepository,
  ) {}

  get mode(): TessConfig['registration']['mode'] {
    return this.config.registration.mode;
  }

  /** The link's base: PUBLIC_URL when set, else the admin's own request. */
  linkFor(token: string, req: Request): string {
    const base = this.config.shares.baseUrl ?? `${req.protocol}://${req.host}`;
    return `${base}/register?invite=${encodeURIComponent(token)}`;
  }

  async create(
    admin: Express.User,
    input: { email?: string | null; expiresInMs?: number },
    ip?: string,
  ): Promise<{ invite: InviteEntity; token: string }> {
    const token = `inv_${randomBytes(32).toString('base64url')}`;
    const expiresAt = new Date(Date.now() + (input.expiresInMs ?? this.config.registration.inviteExpiryMs));
    const invite = await this.invites.create({
      tokenHash: hashToken(token),
      email: input.email ?? null,
      createdBy: admin.id,
      expiresAt,
    });
    await this.audit.record({
      action: 'admin.invite_created',
      userId: admin.id,
      ip,
      details: { inviteId: invite.id, email: invite.email, expiresAt: expiresAt.toISOString() },
    });
    return { invite, token };
  }

  async revoke(admin: Express.User, id: string, ip?: string): Promise<boolean> {
    const revoked = await this.invites.revoke(id);
    if (revoked) {
      await this.audit.record({
        action: 'admin.invite_revoked',
        userId: admin.id,
        ip,
        details: { inviteId: id },
      });
    }
    return revoked;
  }

  list(): Promise<InviteEntity[]> {
    return this.invites.list();
  }

  /**
   * Whether /register may be used with this invite token under the policy: null when it may (the invite,
   * when one is needed), else the refusal.
   */
  async admits(token: string | undefined): Promise<{ invite?: InviteEntity } | RegistrationRefusal> {
    if (this.mode === 'closed') return 'closed';
    if (this.mode === 'open') return {};
    if (!token) return 'invite-required';
    if (token.length > 200) return 'unknown';
    const found = await this.invites.usable(hashToken(token));
    return typeof found === 'string' ? found : { invite: found };
  }

  /** Takes the invite for one registration; null when someone else took it first (or it just expired). */
  claim(token: string): Promise<InviteEntity | null> {
    return this.invites.claim(hashToken(token));
  }

  release(invite: InviteEntity): Promise<void> {
    return this.invites.release(invite.id);
  }

  markUsedBy(invite: InviteEntity, userId: string): Promise<void> {
    return this.invites.markUsedBy(invite.id, userId);
  }
}

/** What the refusal page says, and its status. */
export function refusalPage(refusal: RegistrationRefusal): { status: number; heading: string; text: string } {
  switch (refusal) {
    case 'closed':
      return {
        status: 403,
        heading: 'Registration is closed',
        text: 'New accounts are not being created here. Ask the administrator of this TESS for an account.',
      };
    case 'invite-required':
      return {
        status: 403,
        heading: 'Registration is by invitation',
        text: 'Accounts here are created with an invite link from an administrator. Open the link you were sent, or ask for one.',
      };
    case 'used':
      return {
        status: 410,
        heading: 'This invite was already used',
        text: 'Each invite link creates one account. Ask the administrator for a new link.',
      };
    case 'expired':
    case 'revoked':
    case 'unknown':
      return {
        status: 410,
        heading: 'This invite link is no longer valid',
        text: 'It has expired, was revoked, or was not copied completely. Ask the administrator for a new link.',
      };
  }
}
