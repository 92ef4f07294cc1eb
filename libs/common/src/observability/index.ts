export { createLogger, type LogApp, nestLogger, prettyLogs, REDACTED_PATHS } from './logger.js';
export { TessMetrics } from './metrics.js';
export { REDACTED, redactRequestUrl } from './redact-url.js';
