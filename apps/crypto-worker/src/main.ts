import 'reflect-metadata';
import { type INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createLogger, loadConfig, nestLogger } from '#common';
import { WorkerModule } from './worker.module.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = new Logger('CryptoWorker');
  // Not app.enableShutdownHooks(): Nest re-raises the signal after closing, so even a clean drain would
  // end "killed by SIGTERM". Here a drained shutdown exits 0 and a failed one 1; repeated signals (Ctrl+C
  // plus the SIGTERM of `npm start`) do not interrupt the drain. The handlers are installed before the app
  // starts consuming jobs, so a signal during startup also drains instead of killing an active job.
  let app: INestApplicationContext | undefined;
  let stopping = false;
  const close = (context: INestApplicationContext): void => {
    context.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`TESS crypto worker did not shut down cleanly: ${(error as Error).message ?? error}`);
        process.exit(1);
      },
    );
  };
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.log(`${signal} received`);
    if (app) close(app);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), {
    abortOnError: false,
    logger: nestLogger(createLogger(config, 'crypto-worker')),
  });
  if (stopping) {
    close(app);
    return;
  }
  logger.log(
    `TESS crypto worker started (concurrency ${config.worker.concurrency}, Node.js ${process.version})`,
  );
}

main().catch((error: unknown) => {
  console.error(
    `\nTESS crypto worker could not start:\n${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
