import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDataSource, MIGRATIONS, migrate } from '#common';
import { createWorld, type World } from '../support/world.js';

let world: World;

beforeAll(async () => {
  world = await createWorld({ gateway: 'none' });
});

afterAll(async () => {
  await world.close();
});

async function tables(): Promise<string[]> {
  const ds = createDataSource(world.config);
  await ds.initialize();
  try {
    const rows: { table_name: string }[] = await ds.query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    return rows.map((r) => r.table_name);
  } finally {
    await ds.destroy();
  }
}

describe('migrations', () => {
  it('apply to an empty database, concurrently from two processes exactly once, and revert cleanly', async () => {
    const [a, b] = [createDataSource(world.config), createDataSource(world.config)];
    await Promise.all([a.initialize(), b.initialize()]);
    const applied = await Promise.all([migrate(a), migrate(b)]);
    // The advisory lock serializes the two runners: one applies everything, the other nothing.
    expect(applied.map((x) => x.length).sort()).toEqual([0, MIGRATIONS.length]);
    expect(await tables()).toEqual([
      'api_tokens',
      'audit_chain_heads',
      'audit_events',
      'file_versions',
      'files',
      'folders',
      'invites',
      'mfa_passkeys',
      'mfa_recovery_codes',
      'mfa_totp',
      'migrations',
      'password_reset_tokens',
      'share_download_leases',
      'shares',
      'users',
    ]);

    for (let i = 0; i < MIGRATIONS.length; i++) await a.undoLastMigration({ transaction: 'each' });
    expect(await tables()).toEqual(['migrations']);
    expect(await migrate(a)).toHaveLength(MIGRATIONS.length);
    await Promise.all([a.destroy(), b.destroy()]);
  });
});
