import { Passport } from 'passport';
import type { UserRepository } from '#common';

/**
 * The passport instance behind the login session: stores only the user id in the session and
 * reloads the user on each request (a deleted or disabled user is logged out at once, and a role change
 * applies to the next request). It is a per-app instance, not
 * passport's global singleton, so each gateway app (and each test app) has its own serializers.
 */
export function createSessionPassport(users: UserRepository): InstanceType<typeof Passport> {
  const instance = new Passport();
  instance.serializeUser((user: Express.User, done) => done(null, user.id));
  instance.deserializeUser((id: string, done) => {
    users.findById(id).then(
      (user) =>
        done(
          null,
          user && user.status === 'active'
            ? { id: user.id, username: user.username, role: user.role }
            : false,
        ),
      (err: Error) => done(err),
    );
  });
  return instance;
}
