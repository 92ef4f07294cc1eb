import type { RequestHandler } from 'express';
import helmet from 'helmet';
import type { TessConfig } from '#common';

/** The dashboard's hashing worker (apps/gateway/public/js/dashboard/sha256.worker.js). */
export const HASH_WORKER_PATH = '/static/js/dashboard/sha256.worker.js';

/**
 * A worker runs under the CSP of its own script's response, not the page's. The hashing worker's is the
 * page's minus everything a worker does not use, plus 'wasm-unsafe-eval': hash-wasm compiles its
 * WebAssembly SHA-256 there (WebAssembly.compile), and only there; it grants no JavaScript eval, and the
 * pages keep script-src 'self' alone.
 */
export function hashWorkerPolicy(): RequestHandler {
  return (req, res, next) => {
    if (req.path === HASH_WORKER_PATH) {
      res.setHeader(
        'Content-Security-Policy',
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; base-uri 'none'; frame-ancestors 'none'",
      );
    }
    next();
  };
}

/** Security headers: a CSP that allows no inline script and no third-party origin at all. */
export function securityHeaders(config: TessConfig): RequestHandler {
  const production = config.env === 'production';
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        'default-src': ["'self'"],
        'script-src': ["'self'"],
        'style-src': ["'self'"],
        'img-src': ["'self'", 'data:', 'blob:'],
        'font-src': ["'self'"],
        'connect-src': ["'self'"],
        'object-src': ["'none'"],
        'base-uri': ["'none'"],
        'form-action': ["'self'"],
        'frame-ancestors': ["'none'"],
        ...(production ? { 'upgrade-insecure-requests': [] } : {}),
      },
    },
    hsts: production ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    crossOriginEmbedderPolicy: false,
    referrerPolicy: { policy: 'same-origin' },
  });
}
