// Resident memory of a fresh Node process after importing one module (no work done): how much of the
// gateway's and the worker's idle memory is code loaded at start. Usage: node bench/footprint.mjs [module]
import 'reflect-metadata';

const target = process.argv[2];
if (target) await import(target);
const memory = process.memoryUsage();
console.log(JSON.stringify({ rssMiB: memory.rss / 1048576, heapUsedMiB: memory.heapUsed / 1048576 }));
