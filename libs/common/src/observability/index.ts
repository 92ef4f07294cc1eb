export { createLogger, PinoLoggerService, REDACTED_PATHS } from './logger.js';
export { TessMetrics } from './metrics.js';
export { metricsAuthorized, respondWithMetrics } from './metrics-http.js';
