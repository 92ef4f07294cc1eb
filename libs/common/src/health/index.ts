export {
  checkReadiness,
  READINESS_CHECK_TIMEOUT_MS,
  type ReadinessCheck,
  type ReadinessReport,
  readinessStatusCode,
} from './readiness.js';
