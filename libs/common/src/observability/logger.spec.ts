import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, PinoLoggerService } from './logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString()));
      callback();
    },
  });
  return { lines, logger: createLogger({ logLevel: 'info' }, 'gateway', stream) };
}

describe('logging', () => {
  it('writes JSON lines with the app name and never credentials', () => {
    const { lines, logger } = capture();
    logger.info(
      {
        req: {
          headers: { authorization: 'Bearer tess_secret', cookie: 'tess.sid=abc', 'x-csrf-token': 't' },
        },
        body: { password: 'hunter2hunter2', token: 'tess_x' },
      },
      'request',
    );
    const line = lines[0]!;
    expect(line).toMatchObject({ app: 'gateway', msg: 'request', level: 30 });
    const text = JSON.stringify(line);
    for (const secret of ['tess_secret', 'abc', 'hunter2hunter2', 'tess_x'])
      expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it('routes Nest log calls into pino with their context', () => {
    const { lines, logger } = capture();
    new PinoLoggerService(logger).warn('disk almost full', 'TempSweeper');
    expect(lines[0]).toMatchObject({ level: 40, msg: 'disk almost full', context: 'TempSweeper' });
  });
});
