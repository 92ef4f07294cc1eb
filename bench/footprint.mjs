// Resident memory of a fresh Node process after importing one module (no work done): how much of the
// gateway's and the worker's idle memory is code loaded at start, and (with --expose-gc) how much of its
// heap is still live after a full collection rather than garbage of the loading.
// Usage: node --expose-gc bench/footprint.mjs [module]
import 'reflect-metadata';

const target = process.argv[2];
if (target) await import(target);
const memory = process.memoryUsage();
globalThis.gc?.();
console.log(
  JSON.stringify({
    rssMiB: memory.rss / 1048576,
    heapUsedMiB: memory.heapUsed / 1048576,
    liveHeapMiB: globalThis.gc ? process.memoryUsage().heapUsed / 1048576 : undefined,
  }),
);
