import type { Server } from 'node:http';
import request from 'supertest';
import { csrfFrom } from './http.js';

export const TEST_PASSWORD = 'correct horse battery staple';

export interface TestUser {
  username: string;
  token: string;
  auth: { Authorization: string };
  /** A logged-in browser-like agent and its current CSRF token. */
  agent: request.Agent;
  csrf: string;
}

/** Registers a user through the real pages and creates an API token through the real API (an app or a URL). */
export async function createUser(server: Server | string, username: string): Promise<TestUser> {
  const agent = request.agent(server);
  const page = await agent.get('/register');
  await agent
    .post('/register')
    .type('form')
    .send({ username, email: `${username}@example.test`, password: TEST_PASSWORD, _csrf: csrfFrom(page) })
    .expect(303);
  const home = await agent.get('/home').expect(200);
  const { body } = await request(server)
    .post('/api/v1/tokens')
    .send({ username, password: TEST_PASSWORD, name: 'test' })
    .expect(201);
  return {
    username,
    token: body.token,
    auth: { Authorization: `Bearer ${body.token}` },
    agent,
    csrf: csrfFrom(home),
  };
}

/** Submits the account page's password change form from the user's signed-in agent. */
export async function changePasswordOnPage(
  user: TestUser,
  fields: { currentPassword?: string; newPassword?: string; confirmPassword?: string },
): Promise<request.Response> {
  const page = await user.agent.get('/account').expect(200);
  return user.agent
    .post('/account/password')
    .type('form')
    .send({ _csrf: csrfFrom(page), ...fields });
}

/**
 * Submits the sign-in form from a fresh agent (optionally as a given browser); returns the agent and
 * the answer (303 to /home, to /login/second-factor or, with MFA_REQUIRED, to /login/enrol).
 */
export async function signIn(
  server: Server | string,
  username: string,
  options: { password?: string; userAgent?: string } = {},
): Promise<{ agent: request.Agent; res: request.Response }> {
  const agent = request.agent(server);
  const page = await agent.get('/login');
  const post = agent.post('/login');
  if (options.userAgent) post.set('User-Agent', options.userAgent);
  const res = await post
    .type('form')
    .send({ username, password: options.password ?? TEST_PASSWORD, _csrf: csrfFrom(page) });
  return { agent, res };
}
