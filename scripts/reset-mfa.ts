import 'reflect-metadata';
import {
  AuditRepository,
  auditKeyringFromConfig,
  createDataSource,
  keyProviderFromConfig,
  loadConfig,
  MfaRepository,
  type TessConfig,
  UserRepository,
} from '#common';
import { destroyTotpKey } from '../apps/gateway/src/auth/totp.js';

/**
 * The operator's way back in for a user who lost both the authenticator and the recovery codes
 * (docs/security.md item 30): removes the user's TOTP factor (set-up or active), passkeys, recovery
 * codes and the TOTP factor's data key, and records `mfa.reset` in the user's audit trail. The user
 * signs in with the password alone afterwards. Returns false when there was no factor to remove.
 */
export async function resetMfa(config: TessConfig, username: string): Promise<boolean> {
  const dataSource = createDataSource(config);
  await dataSource.initialize();
  const keys = keyProviderFromConfig(config);
  const keyring = auditKeyringFromConfig(config, keys);
  try {
    const user = await new UserRepository(dataSource).findByUsername(username);
    if (!user) throw new Error(`No user named "${username}"`);
    const { totp, passkeys } = await new MfaRepository(dataSource).removeAll(user.id);
    if (totp) await destroyTotpKey(keys, user.id, totp);
    const removed = totp !== null || passkeys > 0;
    await new AuditRepository(dataSource, keyring).record({
      action: 'mfa.reset',
      userId: user.id,
      details: { by: 'operator', removed, passkeys },
    });
    return removed;
  } finally {
    await dataSource.destroy();
    await keyring.close();
    await keys.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const username = process.argv[2];
  if (!username) {
    console.error('Usage: npm run reset-mfa -- <username>');
    process.exit(2);
  }
  resetMfa(loadConfig(), username).then(
    (removed) =>
      console.log(
        removed
          ? `Two-factor sign-in of ${username} removed: they sign in with their password and can set it up again.`
          : `${username} had no two-factor sign-in; recorded the reset anyway.`,
      ),
    (error: unknown) => {
      console.error(`reset-mfa failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
