// How TESS's two processes are started, in one place: `npm start` (scripts/start.mjs) and `npm run bench`
// import these, and test/deploy checks that the Dockerfile's images set the same.

/**
 * The crypto worker allocates a fresh buffer per cipher.update(): a high mmap threshold avoids a page
 * fault per 4 KiB there (docs/STACK.md: AES-GCM 868 -> 1919 MB/s in a read loop). A 1 MiB V8 semi-space
 * lets those buffers die sooner: measured with `npm run bench`, the worker's peak during a 512 MiB job fell
 * from about 255 to 230 MiB at the same speed and CPU.
 */
export const WORKER_ENV = {
  GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456',
  NODE_OPTIONS: '--max-semi-space-size=1',
};

/**
 * The gateway streams through many short-lived buffers and runs argon2 (19 MiB per hash) on libuv threads.
 * Measured with `npm run bench` (docs/benchmarks.md): glibc's sliding mmap threshold lets those large
 * blocks settle in per-thread arenas and stay resident; a fixed 128 KiB threshold returns them and two
 * arenas bound the per-thread caches (peak of a 512 MiB upload about 40 MiB lower at the same throughput).
 * A smaller V8 semi-space (--max-semi-space-size=2) saved another ~15 MiB but more than doubled the
 * gateway's CPU per upload in garbage collection, so it is not used.
 */
export const GATEWAY_ENV = {
  GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=131072:glibc.malloc.arena_max=2',
};
