/**
 * Copies `source` into `target` at `targetStart` (as much as fits) and returns the bytes copied: what
 * `source.copy(target, targetStart)` does, at memcpy speed also into a SharedArrayBuffer.
 *
 * Why not `Buffer#copy`: in Node 24 it is `TypedArray#set`, and V8 copies into shared memory with relaxed
 * atomic word stores. Measured on this project's 2-core VM, 64 KiB at a time: 5-10 GB/s into a
 * SharedArrayBuffer against 29-34 GB/s into an ordinary buffer. The worker's read buffers are shared (the
 * hash threads read them without a copy), so every staged byte it decrypted was copied at the slow rate
 * (the worker pass profile: 131 ms of `_copyActual` per 512 MiB in openRecord). `Buffer#fill` with a
 * Buffer as the value is one native memcpy when the range is exactly that long. bench/worker-pass.mjs,
 * 512 MiB, discard sink, 4 runs each alternating: main thread 1.10-1.20 -> 1.01-1.09 CPU-s, 294-318 ->
 * 304-341 MB/s. The S3 writer's part buffers are shared too, but there the same A/B (3 runs each against
 * s3rver) showed no gain within its noise (cipher output arrives in 64 KiB pieces and 16-byte tags), so it
 * keeps Buffer#copy.
 */
export function copyBytes(source: Uint8Array, target: Buffer, targetStart = 0): number {
  const n = Math.max(0, Math.min(source.length, target.length - targetStart));
  if (n === 0) return 0;
  target.fill(n === source.length ? source : source.subarray(0, n), targetStart, targetStart + n);
  return n;
}
