// The SHA-256 of a file the dashboard uploads, computed off the page's thread so the page stays responsive,
// and as a stream: the file is read in the browser's own chunks, never whole into memory. hash-wasm's
// WebAssembly SHA-256 is served by the gateway (/assets/hash-wasm/); this script's response carries its
// own CSP with 'wasm-unsafe-eval' (apps/gateway/src/http/security.ts, hashWorkerPolicy), the pages' does not.
importScripts('/assets/hash-wasm/sha256.umd.min.js');

/** How often (bytes hashed) the page hears how far the hash is. */
const REPORT_EVERY = 16 * 1024 * 1024;

self.onmessage = async (event) => {
  const { file } = event.data;
  try {
    const hasher = await self.hashwasm.createSHA256();
    hasher.init();
    const reader = file.stream().getReader();
    let bytes = 0;
    let reported = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      hasher.update(value);
      bytes += value.byteLength;
      if (bytes - reported >= REPORT_EVERY) {
        reported = bytes;
        self.postMessage({ type: 'progress', bytes });
      }
    }
    self.postMessage({ type: 'done', sha256: hasher.digest('hex') });
  } catch (error) {
    self.postMessage({ type: 'error', message: String(error?.message ?? error) });
  }
};
