import type { LoggerService } from '@nestjs/common';
import { Logger as NestPinoLogger, PinoLogger } from 'nestjs-pino';
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';
import type { TessConfig } from '../config/config.schema.js';
import { lazyModule } from '../util/lazy-module.js';

/*
 * pino-pretty (with its colorette, dateformat and sonic-boom) loads only when a process logs readable
 * lines: a gateway or worker writing JSON lines (in a container, under a supervisor) never calls it,
 * and it costs about 1 MiB of live V8 heap and 6 MiB of resident memory in a bare process
 * (bench/footprint.mjs).
 */
const pinoPretty = lazyModule<typeof import('pino-pretty')>('pino-pretty');

/** Paths never written to logs, whatever a caller passes. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.token',
  '*.dataKey',
  '*.secret',
];

export type LogApp = 'gateway' | 'crypto-worker';
type LogConfig = Pick<TessConfig, 'logLevel' | 'logFormat'>;

/** Human-readable output: asked for, or `auto` with stdout on a terminal (`npm start` in a shell). */
export function prettyLogs(
  config: Pick<TessConfig, 'logFormat'>,
  isTTY = process.stdout.isTTY === true,
): boolean {
  return config.logFormat === 'pretty' || (config.logFormat === 'auto' && isTTY);
}

/**
 * Nest's start-up chatter (one line per module and per route, ~60 lines for the gateway): on a terminal
 * it is demoted to debug so the lines that matter (and `npm start`'s banner) stay visible.
 */
const FRAMEWORK_CONTEXTS = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'NestApplication',
  'WebSocketsController',
]);

function isFrameworkChatter(first: unknown): boolean {
  const context = (first as { context?: unknown } | null)?.context;
  return typeof context === 'string' && FRAMEWORK_CONTEXTS.has(context);
}

/**
 * pino-pretty as a stream in this thread rather than a transport: a transport is a worker thread with
 * its own heap in every process, for output that only ever goes to a developer's terminal.
 */
function prettyStream(app: LogApp, destination?: DestinationStream): DestinationStream {
  return pinoPretty()({
    sync: true,
    ...(destination ? { destination, colorize: false } : {}),
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname,app,context,req,res,reqId,responseTime',
    messageFormat: `${app}{if context} [{context}]{end} {msg}`,
  });
}

/**
 * Logs for one app (pino) to stdout or `destination`: JSON lines with the app name, or readable, quieter
 * lines on a terminal (prettyLogs); secrets are redacted by path whatever the format.
 */
export function createLogger(config: LogConfig, app: LogApp, destination?: DestinationStream): Logger {
  const quiet = prettyLogs(config);
  const options: LoggerOptions = {
    level: config.logLevel,
    base: { app },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(quiet
      ? {
          hooks: {
            logMethod(this: Logger, args: Parameters<Logger['info']>, method, level) {
              if (level === pino.levels.values.info && isFrameworkChatter(args[0])) {
                return this.debug(...args);
              }
              return method.apply(this, args);
            },
          },
        }
      : {}),
  };
  const stream = quiet ? prettyStream(app, destination) : destination;
  return stream ? pino(options, stream) : pino(options);
}

/**
 * Nest's logger (framework messages and every `new Logger(ctx)` call) on top of `logger`, by
 * nestjs-pino: inside an HTTP request it writes through that request's child logger, so each line
 * carries the request id (apps/gateway/src/http/request-logging.ts binds it). nestjs-pino keeps one
 * root logger per process, the first one it is given; each TESS process has exactly one.
 */
export function nestLogger(logger: Logger): LoggerService {
  return new NestPinoLogger(new PinoLogger({ pinoHttp: { logger } }), {});
}
