import 'reflect-metadata';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import {
  AdminUserRepository,
  AuditRepository,
  auditKeyringFromConfig,
  createDataSource,
  keyProviderFromConfig,
  loadConfig,
  type TessConfig,
  TessMetrics,
  UserRepository,
} from '#common';
import { USERNAME_PATTERN } from '../apps/gateway/src/auth/auth.schemas.js';
import { PasswordService, passwordProblem } from '../apps/gateway/src/auth/password.service.js';

/**
 * The first admin (docs/security.md item 37): `npm run create-admin -- <username> [email]` (in an image:
 * `node dist/scripts/create-admin.js <username>`) promotes an existing account, or creates it with a
 * password typed at a hidden prompt (or read from stdin when it is not a terminal:
 * `printf '%s\n' "$PASSWORD" | npm run create-admin -- alice`). The password passes the registration
 * policy; `admin.promoted` is recorded in the account's audit trail. Run it once the schema exists (after
 * the first gateway start or `npm run migrate`).
 */
export async function createAdmin(
  config: TessConfig,
  username: string,
  readPassword: () => Promise<string>,
  email?: string,
): Promise<'created' | 'promoted' | 'already'> {
  if (!USERNAME_PATTERN.test(username))
    throw new Error('Usernames are 3-80 characters: letters, digits, dot, underscore or hyphen');
  const dataSource = createDataSource(config);
  await dataSource.initialize();
  const keys = keyProviderFromConfig(config);
  const keyring = auditKeyringFromConfig(config, keys);
  try {
    const users = new UserRepository(dataSource);
    const audit = new AuditRepository(dataSource, keyring);
    const existing = await users.findByUsername(username);
    if (existing) {
      if (existing.role === 'admin') return 'already';
      await new AdminUserRepository(dataSource).setRole(existing.id, 'admin');
      await audit.record({ action: 'admin.promoted', userId: existing.id, details: { by: 'create-admin' } });
      return 'promoted';
    }
    const password = await readPassword();
    const problem = passwordProblem(password, username);
    if (problem) throw new Error(problem);
    const passwords = new PasswordService(config, new TessMetrics('gateway'));
    const user = await users.create({
      username,
      email: email ?? `${username}@localhost`,
      passwordHash: await passwords.hash(password),
      role: 'admin',
    });
    await audit.record({ action: 'user.registered', userId: user.id, details: { by: 'create-admin' } });
    await audit.record({ action: 'admin.promoted', userId: user.id, details: { by: 'create-admin' } });
    return 'created';
  } finally {
    await dataSource.destroy();
    await keyring.close();
    await keys.close();
  }
}

/** One line from stdin; on a terminal, asked for without echoing what is typed. */
function promptPassword(): Promise<string> {
  const tty = process.stdin.isTTY === true;
  let muted = false;
  const output = new Writable({
    write(chunk, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: tty });
  return new Promise((resolve, reject) => {
    let answered = false;
    rl.on('close', () => {
      if (!answered) reject(new Error('No password given on stdin'));
    });
    if (tty) process.stderr.write('Password for the new admin: ');
    muted = tty;
    rl.once('line', (line) => {
      answered = true;
      if (tty) process.stderr.write('\n');
      rl.close();
      resolve(line);
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [username, email] = process.argv.slice(2);
  if (!username) {
    console.error(
      'Usage: npm run create-admin -- <username> [email]   (the password is prompted for or read from stdin)',
    );
    process.exit(2);
  }
  createAdmin(loadConfig(), username, promptPassword, email).then(
    (outcome) =>
      console.log(
        outcome === 'created'
          ? `Created admin ${username}. Sign in and turn on two-factor sign-in (needed when ADMIN_MFA_REQUIRED).`
          : outcome === 'promoted'
            ? `${username} is an admin now.`
            : `${username} was already an admin.`,
      ),
    (error: unknown) => {
      console.error(`create-admin failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
