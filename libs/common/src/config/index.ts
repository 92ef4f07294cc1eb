export { ConfigError, loadConfig } from './config.js';
export { TESS_CONFIG, TessConfigModule } from './config.module.js';
export {
  type ClamdAddress,
  DEV_SESSION_SECRET,
  durationSchema,
  type Env,
  envSchema,
  parseClamdUrl,
  type TessConfig,
  toConfig,
} from './config.schema.js';
