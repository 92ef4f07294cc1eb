export { createLogger, type LogApp, nestLogger, prettyLogs, REDACTED_PATHS } from './logger.js';
export { TessMetrics } from './metrics.js';
export { metricsAuthorized, respondWithMetrics } from './metrics-http.js';
export { REDACTED, redactRequestUrl } from './redact-url.js';
