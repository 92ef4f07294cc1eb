import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { releaseBuffer } from './release-buffer.js';

describe('releaseBuffer', () => {
  it("detaches a cipher's own output buffer", () => {
    const cipher = createCipheriv('aes-256-gcm', randomBytes(32), randomBytes(12));
    const out = cipher.update(randomBytes(65536));
    expect(out.buffer.byteLength).toBe(65536);
    releaseBuffer(out);
    expect(out.buffer.byteLength).toBe(0);
    expect(out.length).toBe(0);
  });

  it('leaves slices, pooled buffers and shared memory alone', () => {
    const whole = Buffer.alloc(4096);
    const slice = whole.subarray(16, 32);
    releaseBuffer(slice);
    expect(whole.buffer.byteLength).toBe(4096);

    const pooled = Buffer.from('small strings come from the shared pool');
    const poolSize = pooled.buffer.byteLength;
    releaseBuffer(pooled);
    expect(pooled.buffer.byteLength).toBe(poolSize);
    expect(pooled.toString()).toBe('small strings come from the shared pool');

    const shared = Buffer.from(new SharedArrayBuffer(1024));
    releaseBuffer(shared);
    expect(shared.length).toBe(1024);
  });
});
