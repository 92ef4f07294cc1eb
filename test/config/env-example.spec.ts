import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envSchema, loadConfig } from '#common';

const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
const entries = Object.fromEntries([...example.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));

describe('.env.example', () => {
  it('documents every variable of the config schema and nothing else', () => {
    expect(Object.keys(entries).sort()).toEqual(Object.keys(envSchema.shape).sort());
  });

  it('is itself a valid development configuration', () => {
    expect(() => loadConfig(entries)).not.toThrow();
  });
});
