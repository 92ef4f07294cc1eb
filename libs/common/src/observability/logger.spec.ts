import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, nestLogger, prettyLogs } from './logger.js';

function capture(logFormat: 'json' | 'pretty' = 'json') {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const lines = () => chunks.join('').split('\n').filter(Boolean);
  return {
    json: () => lines().map((line) => JSON.parse(line) as Record<string, unknown>),
    text: () => chunks.join(''),
    logger: createLogger({ logLevel: 'info', logFormat }, 'gateway', stream),
  };
}

const CREDENTIALS = {
  req: {
    headers: { authorization: 'Bearer tess_secret', cookie: 'tess.sid=abc', 'x-csrf-token': 't' },
  },
  body: { password: 'hunter2hunter2', token: 'tess_x' },
};

describe('logging', () => {
  it('writes JSON lines with the app name and never credentials', () => {
    const { json, logger } = capture();
    logger.info(CREDENTIALS, 'request');
    const line = json()[0]!;
    expect(line).toMatchObject({ app: 'gateway', msg: 'request', level: 30 });
    const text = JSON.stringify(line);
    for (const secret of ['tess_secret', 'abc', 'hunter2hunter2', 'tess_x'])
      expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it('routes Nest log calls into pino with their context', () => {
    const { json, logger } = capture();
    nestLogger(logger).warn?.('disk almost full', 'TempSweeper');
    expect(json()[0]).toMatchObject({ level: 40, msg: 'disk almost full', context: 'TempSweeper' });
  });

  it('on a terminal: readable lines, Nest start-up chatter hidden, credentials still redacted', () => {
    const { text, logger } = capture('pretty');
    logger.info({ context: 'RouterExplorer' }, 'Mapped {/api/v1/files, GET} route');
    logger.info({ context: 'Gateway', ...CREDENTIALS }, 'TESS gateway listening');
    const out = text();
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\] INFO: gateway \[Gateway\] TESS gateway listening/);
    expect(out).not.toContain('Mapped');
    expect(() => JSON.parse(out.split('\n')[0]!)).toThrow();
    for (const secret of ['tess_secret', 'abc', 'hunter2hunter2', 'tess_x'])
      expect(out).not.toContain(secret);
  });

  it('is readable only when asked or with stdout on a terminal', () => {
    expect(prettyLogs({ logFormat: 'auto' }, true)).toBe(true);
    expect(prettyLogs({ logFormat: 'auto' }, false)).toBe(false);
    expect(prettyLogs({ logFormat: 'json' }, true)).toBe(false);
    expect(prettyLogs({ logFormat: 'pretty' }, false)).toBe(true);
  });
});
