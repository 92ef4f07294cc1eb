import { afterAll, describe, expect, it } from 'vitest';
import { parseVerdict } from '../../scan/clamd-client.js';
import { inspectText, TypeDetector } from './type-detector.js';

const detector = new TypeDetector();
afterAll(() => detector.onApplicationShutdown());

describe('TypeDetector', () => {
  it('finds binary formats by their magic bytes on the detection thread', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');
    expect(await detector.detect(png)).toEqual({ type: 'image/png', binary: true, activeContent: false });
    const pe = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200)]);
    expect((await detector.detect(pe)).type).toBe('application/x-msdownload');
    expect((await detector.detect(Buffer.from('%PDF-1.4\n'))).type).toBe('application/pdf');
    expect(await detector.detect(Buffer.alloc(0))).toEqual({
      type: 'application/x-empty',
      binary: false,
      activeContent: false,
    });
  });

  it('tells text formats apart by inspection, and script in markup', async () => {
    expect(inspectText(Buffer.from('hello\nworld\n')).type).toBe('text/plain');
    expect(inspectText(Buffer.from('a,b\n1,2\n3,4\n')).type).toBe('text/csv');
    expect(inspectText(Buffer.from(' {"a": [1, 2]}')).type).toBe('application/json');
    expect(inspectText(Buffer.from('{not json')).type).toBe('text/plain');
    expect(inspectText(Buffer.from('#!/bin/sh\nrm -rf /\n')).type).toBe('text/x-shellscript');
    expect(inspectText(Buffer.from('<!DOCTYPE html><p onclick="x()">'))).toEqual({
      type: 'text/html',
      binary: false,
      activeContent: true,
    });
    expect((await detector.detect(Buffer.from('<?xml version="1.0"?><svg></svg>'))).type).toBe(
      'image/svg+xml',
    );
    expect((await detector.detect(Buffer.from('<?xml version="1.0"?><note/>'))).type).toBe('application/xml');
    expect(inspectText(Buffer.from([0xff, 0xfe, 0x00, 0x41])).type).toBe('application/octet-stream');
  });

  it('a detection over its time limit fails (a job error), and the next detection works again', async () => {
    const hurried = new TypeDetector(1);
    try {
      await expect(hurried.detect(Buffer.from('%PDF-1.4\n'))).rejects.toThrow(/did not finish within 1 ms/);
    } finally {
      await hurried.onApplicationShutdown();
    }
    expect((await detector.detect(Buffer.from('%PDF-1.4\n'))).type).toBe('application/pdf');
  });
});

describe('clamd answers', () => {
  it('are parsed into verdicts', () => {
    expect(parseVerdict('stream: OK\0')).toEqual({ result: 'clean' });
    expect(parseVerdict('stream: Win.Test.EICAR_HDB-1 FOUND\0')).toEqual({
      result: 'infected',
      signature: 'Win.Test.EICAR_HDB-1',
    });
    expect(parseVerdict('INSTREAM size limit exceeded. ERROR\0')).toEqual({ result: 'too-large' });
    expect(parseVerdict("stream: Can't allocate memory ERROR\0")).toEqual({
      result: 'error',
      message: "stream: Can't allocate memory ERROR",
    });
    expect(parseVerdict('')).toEqual({ result: 'error', message: 'no answer' });
  });
});
