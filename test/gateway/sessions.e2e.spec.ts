import type { NestExpressApplication } from '@nestjs/platform-express';
import argon2 from 'argon2';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { UserRepository } from '#common';
import { csrfFrom } from '../support/http.js';
import { createWorld, type World } from '../support/world.js';

const PASSWORD = 'a sufficiently long passphrase';
const opened: World[] = [];

async function start(overrides: Record<string, string> = {}) {
  const world = await createWorld({ env: overrides });
  opened.push(world);
  return { world, app: world.app };
}

async function registerAgent(app: NestExpressApplication, username: string) {
  const agent = request.agent(app.getHttpServer());
  const page = await agent.get('/register');
  await agent
    .post('/register')
    .type('form')
    .send({ username, email: `${username}@example.test`, password: PASSWORD, _csrf: csrfFrom(page) })
    .expect(303);
  return agent;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(async () => {
  for (const world of opened.splice(0)) await world.close();
});

describe('session timeouts (enforced server-side)', () => {
  it('expires an idle session', async () => {
    const { app } = await start({ SESSION_IDLE_TIMEOUT: '3' });
    const agent = await registerAgent(app, 'idler');
    await agent.get('/home').expect(200);
    await sleep(3_500);
    await agent.get('/home').expect(303).expect('Location', '/login');
  });

  it('ends a busy session at the absolute timeout even while it keeps being used', async () => {
    const { app } = await start({ SESSION_IDLE_TIMEOUT: '60', SESSION_ABSOLUTE_TIMEOUT: '2' });
    const agent = await registerAgent(app, 'busy');
    for (let i = 0; i < 3; i++) {
      await agent.get('/home').expect(200);
      await sleep(500);
    }
    await sleep(1_000);
    await agent.get('/home').expect(303).expect('Location', '/login');
  });
});

describe('password hashing upgrades', () => {
  it('rehashes with the configured parameters at the next login when they have risen', async () => {
    const { app, world } = await start({ ARGON2_MEMORY_KIB: '24576', ARGON2_TIME_COST: '3' });
    const agent = await registerAgent(app, 'upgrader');
    const users = app.get(UserRepository);
    const user = (await users.findByUsername('upgrader'))!;
    expect(user.passwordHash).toContain('m=24576');
    // Simulate an account created when the parameters were the OWASP minimum.
    const old = await argon2.hash(PASSWORD, {
      type: argon2.argon2id,
      memoryCost: 19456,
      timeCost: 2,
      parallelism: 1,
    });
    await users.updatePasswordHash(user.id, old);
    const home = await agent.get('/home');
    await agent
      .post('/logout')
      .type('form')
      .send({ _csrf: csrfFrom(home) });
    const page = await agent.get('/login');
    await agent
      .post('/login')
      .type('form')
      .send({ username: 'upgrader', password: PASSWORD, _csrf: csrfFrom(page) })
      .expect(303);
    const after = (await users.findById(user.id))!.passwordHash;
    expect(after).not.toBe(old);
    expect(after).toMatch(/m=24576/);
    expect(after).toMatch(/t=3/);
    expect(world.config.argon2.memoryCost).toBe(24576);
  });
});

describe('readiness', () => {
  it('answers /readyz with 503 naming Redis when Redis is unreachable, while /healthz stays up', async () => {
    const { app } = await start({ REDIS_URL: 'redis://127.0.0.1:1' });
    await request(app.getHttpServer()).get('/healthz').expect(200);
    const res = await request(app.getHttpServer()).get('/readyz').expect(503);
    expect(res.body).toMatchObject({ statusCode: 503, status: 'unavailable' });
    expect(res.body.checks.database).toBe('ok');
    expect(res.body.checks.redis).toMatch(/^unavailable/);
  });
});
