import { envSchema, type TessConfig, toConfig } from './config.schema.js';

/** Names whose values must never be printed, even in validation errors. */
const SENSITIVE = new Set([
  'SESSION_SECRET',
  'METRICS_TOKEN',
  'S3_SECRET_ACCESS_KEY',
  'DATABASE_URL',
  'REDIS_URL',
  'SMTP_URL',
]);

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
        'Fix the environment (see .env.example for every variable) and start again.',
    );
    this.name = 'ConfigError';
  }
}

/**
 * Validates the environment once and returns the typed config. Empty strings count as unset so an
 * `.env` line like `S3_ENDPOINT=` falls back to the default instead of failing.
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, cwd?: string): TessConfig {
  const env: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = source[key];
    if (value !== undefined && value !== '') env[key] = value;
  }
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = issue.path.join('.') || '(environment)';
        const shown = name in env && !SENSITIVE.has(name) ? ` (got ${JSON.stringify(env[name])})` : '';
        return `${name} ${issue.message}${shown}`;
      }),
    );
  }
  return toConfig(parsed.data, cwd);
}
