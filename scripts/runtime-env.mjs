// How TESS's two processes are started, in one place: `npm start` (scripts/start.mjs) and `npm run bench`
// import these, and test/deploy checks that the Dockerfile's images set the same.

/**
 * The crypto worker allocates a fresh buffer per cipher.update(): a high mmap threshold avoids a page
 * fault per 4 KiB there (docs/deployment.md: AES-GCM 868 -> 1919 MB/s).
 *
 * V8's young generation: uncapped, a long upload grows the worker's semi-spaces to their maximum and the
 * process keeps them resident. Capped at 16 MiB (`npm run bench` phases, alternating runs of the same
 * processes with and without): worker peak of a 512 MiB upload, local store 232-247 vs 253-264 MiB, to
 * s3rver 273-312 vs 337-338 MiB; growth of the peak from an 8 MiB to a 512 MiB file 35-37 vs 57 MiB;
 * worker CPU seconds per 512 MiB the same locally (1.04 vs 1.02-1.03 pipelined) and 1.52-1.60 vs 1.50 to
 * s3rver; the bare pass 0.72-0.75 CPU-s either way. Smaller caps (1 or 4 MiB) cost 0.8-1.8 CPU seconds
 * per 512 MiB upload to S3 in garbage collection (an earlier measurement), so 16 it is.
 */
export const WORKER_ENV = {
  GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456',
  NODE_OPTIONS: '--max-semi-space-size=16',
};

/**
 * The gateway streams through many short-lived buffers and runs argon2 (19 MiB per hash) on libuv threads.
 * Measured with `npm run bench` (docs/benchmarks.md): glibc's sliding mmap threshold lets those large
 * blocks settle in per-thread arenas and stay resident; a fixed 128 KiB threshold returns them and two
 * arenas bound the per-thread caches (peak of a 512 MiB upload about 40 MiB lower at the same throughput).
 * Re-measured on Node 24.21 (`BENCH_RUNTIME_ENV=off BENCH_PHASES=local npm run bench` against the default):
 * 512 MiB upload peak 297 -> 259 MiB, download peak 355 -> 307 MiB, CPU the same, so it stays.
 *
 * V8's young generation: Node 24 lets each of its two semi-spaces grow to 64 MiB here (V8's default cap,
 * doubled without pointer compression), and start-up alone (loading the modules) grows them to 32-64 MiB,
 * which the gateway then keeps resident while idle. Capped at 8 MiB (bench/gateway-memory.mjs, the same
 * 512 MiB file, default vs 16 vs 8 vs 4, twice each): idle 201-211 -> 160-163 MiB, peak of a multipart
 * upload 297-300 -> 231-265 MiB, of a download 336-358 -> 270-303 MiB, gateway CPU seconds per multipart
 * upload, tus upload and download the same within the run-to-run noise (2.0/0.8-1.9/2.8-3.0 vs
 * 2.0-2.2/1.3-1.7/2.9-3.4); 4 MiB saved little more at idle and cost CPU on the multipart upload
 * (2.2-2.7 s), 2 MiB more than doubled it (an earlier measurement).
 *
 * V8's old generation (GATEWAY_NODE_ARGS below): a floor of 80 MiB under its collection limit. The idle
 * gateway's heap holds about 50 MiB that stays alive (the loaded code, mostly), and V8 sets the next limit
 * from it; after a quiet spell (15 s without requests, or a download) that limit came out about 1.3 x the
 * live size, 16-19 MiB above it, which is no more than the young generation can promote at once, so V8
 * started a full marking on every allocation step of the next upload: 16-25 mark-compacts per 512 MiB
 * multipart upload, each freeing 1-5 MiB, and 1.8-2.0 user CPU-s instead of 0.3-0.5 (--trace-gc
 * --trace-incremental-marking, alternating runs on the same gateway). With the floor: 0-2 mark-compacts and
 * 0.4-0.5 s after the same idle spell or download. It costs memory: idle 158-159 against 152 MiB, upload
 * and download peaks 5-20 MiB higher (`BENCH_PHASES=local`, alternating). Lower floors did not hold: 64 MiB
 * left the storm as it was (about 21 mark-compacts per upload), 72 MiB halved it (10-12). So the floor has
 * to stay about 30 MiB above the live heap: raise it if the gateway's live heap grows (--trace-gc shows it
 * after each mark-compact). A young generation of 4 MiB instead did not stop it (19-26).
 * An operator's own NODE_OPTIONS are appended to this one by `npm start`; in the image, setting
 * NODE_OPTIONS replaces it.
 */
export const GATEWAY_ENV = {
  GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=131072:glibc.malloc.arena_max=2',
  NODE_OPTIONS: '--max-semi-space-size=8',
};

/**
 * Node flags of the gateway that NODE_OPTIONS does not accept, so they go on its command line (`npm start`,
 * the image's CMD, the benchmark): the old-generation floor explained above.
 */
export const GATEWAY_NODE_ARGS = ['--initial-old-space-size=80'];
