// Turns the measurements of bench/run.mjs into docs/benchmarks.md, hand-written SVG charts and the
// summary printed at the end of the run. Targets come from issue 7 (the ceiling's fourth primitive and the 0.6x ingest target from issue 14, encrypted staging), pipelining from issue 21.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// --- formatting ----------------------------------------------------------------------------------------

const has = (v) => typeof v === 'number' && Number.isFinite(v);
const fmt = (v, digits = 0) => (has(v) ? v.toFixed(digits) : 'n/a');
const mbs = (v) => (has(v) ? `${fmt(v)} MB/s` : 'n/a');
const mib = (v) => (has(v) ? `${fmt(v)} MiB` : 'n/a');
const sec = (v) => (has(v) ? `${fmt(v, 2)} s` : 'n/a');
const ms = (v) => (has(v) ? `${fmt(v, v < 10 ? 1 : 0)} ms` : 'n/a');
const times = (v) => (has(v) ? `${fmt(v, 2)}x` : 'n/a');
const ratio = (a, b) => (has(a) && has(b) && b !== 0 ? a / b : undefined);
const esc = (text) => String(text).replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The small-file rows measured: one file per request, then several. */
function smallRows(r) {
  return [r.smallFiles, r.smallFilesBatched].filter(Boolean);
}

/**
 * CPU seconds of every process that worked for one end-to-end upload: gateway, workers, this client and,
 * on s3rver, the endpoint.
 */
function uploadCpu(e) {
  return [e.gatewayCpuSeconds, e.workerCpuSeconds, e.clientCpuSeconds, e.endpointCpuSeconds]
    .filter(has)
    .reduce((sum, v) => sum + v, 0);
}

/** CPU ms per file of TESS itself (gateway, workers, PostgreSQL, Redis), the client left out. */
function smallCpu(row) {
  if (!row) return undefined;
  return [row.gatewayCpuMsPerFile, row.workerCpuMsPerFile, row.postgresCpuMsPerFile, row.redisCpuMsPerFile]
    .filter(has)
    .reduce((sum, v) => sum + v, 0);
}

function table(head, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** PASS / MISS / NOT MEASURED, with the floor when a target has one. */
function verdict(ok, floorOk) {
  if (ok === undefined) return 'NOT MEASURED';
  if (ok) return '**PASS**';
  if (floorOk === undefined) return '**MISS**';
  return floorOk ? '**MISS** (above the floor)' : '**MISS** (below the floor too)';
}

// --- CPU profile ---------------------------------------------------------------------------------------

function category(frame) {
  const { functionName: fn, url } = frame;
  if (fn === '(idle)') return 'idle (waiting for I/O)';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)') return 'V8/native outside JS frames (program)';
  if (url.includes('internal/crypto/hash')) return 'SHA-1 + SHA-256 (Hash.update)';
  if (url.includes('internal/crypto/cipher')) return 'AES-256-GCM (Cipher.update/final)';
  if (url.includes('encrypt.stream')) return 'SegmentEncryptor (segmenting, copies)';
  if (fn === 'postMessage' || url.includes('hash-pool')) return 'hand-off to the hash threads';
  if (url.includes('internal/streams') || url.includes('node:stream')) return 'Node stream machinery';
  if (url.includes('internal/fs')) return 'file reads';
  if (url.includes('/dist/')) return 'other project code';
  if (url.includes('node_modules')) return 'dependencies';
  return 'other (Node internals)';
}

/**
 * Self time by function and by category from a .cpuprofile (V8 CPU profile), counting only samples
 * inside `window` ([from, to] in microseconds of the monotonic clock, as process.hrtime) when given.
 */
export function summarizeProfile(profile, name, window) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    if (window && (at < window[0] || at > window[1])) continue;
    const us = deltas[i + 1] ?? 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + Math.max(0, us));
  }
  const byFunction = new Map();
  const byCategory = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const frame = nodes.get(id)?.callFrame;
    if (!frame) continue;
    total += us;
    const where = frame.url
      ? ` ${frame.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${frame.lineNumber + 1}`
      : '';
    const label = `${frame.functionName || '(anonymous)'}${where}`;
    byFunction.set(label, (byFunction.get(label) ?? 0) + us);
    const cat = category(frame);
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + us);
  }
  const top = (map, n) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([label, us]) => ({ label, ms: us / 1000, share: total ? us / total : 0 }));
  return {
    name,
    wallMs: window ? (window[1] - window[0]) / 1000 : (profile.endTime - profile.startTime) / 1000,
    sampledMs: total / 1000,
    categories: top(byCategory, 20),
    functions: top(byFunction, 12),
  };
}

// --- SVG charts ----------------------------------------------------------------------------------------

/** Round axis ticks (steps of 1, 2, 2.5 or 5 x 10^k) from 0 to at least `max`. */
function ticks(max, count = 5) {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * power).find((s) => s >= raw) ?? raw;
  const out = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(v);
  if (out.at(-1) < max) out.push(out.at(-1) + step);
  return out;
}

const COLORS = { tess: '#2f6fb3', peer: '#8a8f98', ceiling: '#d9822b', target: '#c0392b' };

/**
 * A horizontal bar chart. `markers` draw dashed vertical lines (targets). With `cap`, the axis stops
 * there and longer bars are drawn cut (a white gap near the end) with their real value printed.
 */
function barChart({ title, unit, rows, markers = [], cap }) {
  const present = rows.filter((r) => has(r.value));
  const width = 820;
  const left = 300;
  const right = 110;
  const top = markers.length ? 46 + 16 * markers.length : 46;
  const rowHeight = 26;
  const height = top + present.length * rowHeight + 40;
  const largest = Math.max(1, ...present.map((r) => r.value), ...markers.map((m) => m.value));
  const axis = ticks(cap && largest > cap ? cap : largest);
  const max = axis.at(-1);
  const x = (v) => left + ((width - left - right) * Math.min(v, max)) / max;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="600">${esc(title)}</text>`,
  ];
  for (const v of axis) {
    parts.push(
      `<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${height - 30}" stroke="#e3e5e8"/>`,
      `<text x="${x(v)}" y="${height - 14}" text-anchor="middle" fill="#555">${fmt(v)}</text>`,
    );
  }
  parts.push(`<text x="${width - 10}" y="${height - 14}" text-anchor="end" fill="#555">${esc(unit)}</text>`);
  present.forEach((r, i) => {
    const y = top + i * rowHeight;
    const color = COLORS[r.kind ?? 'tess'];
    const cut = r.value > max;
    parts.push(
      `<text x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(r.label)}</text>`,
      `<rect x="${left}" y="${y + 3}" width="${Math.max(1, x(r.value) - left)}" height="${rowHeight - 8}" fill="${color}" rx="2"/>`,
      cut ? `<rect x="${x(max) - 28}" y="${y + 1}" width="6" height="${rowHeight - 4}" fill="#ffffff"/>` : '',
      `<text x="${x(r.value) + 6}" y="${y + 16}" fill="#222">${fmt(r.value)}${cut ? ' (axis cut)' : ''}</text>`,
    );
  });
  markers.forEach((m, i) => {
    parts.push(
      `<line x1="${x(m.value)}" y1="${top - 6 - 16 * (markers.length - 1 - i)}" x2="${x(m.value)}" y2="${height - 30}" stroke="${COLORS.target}" stroke-dasharray="5 4" stroke-width="1.5"/>`,
      x(m.value) > width - 260
        ? `<text x="${x(m.value) - 4}" y="${top - 10 - 16 * (markers.length - 1 - i)}" text-anchor="end" fill="${COLORS.target}" font-size="12">${esc(m.label)}</text>`
        : `<text x="${x(m.value) + 4}" y="${top - 10 - 16 * (markers.length - 1 - i)}" fill="${COLORS.target}" font-size="12">${esc(m.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.filter(Boolean).join('\n')}\n`;
}

/** A line chart over categorical x values (file sizes), one line per series. */
function lineChart({ title, unit, xs, series, markers = [] }) {
  const width = 820;
  const height = 360;
  const left = 70;
  const right = 220;
  const top = 70;
  const bottom = 50;
  const values = series.flatMap((s) => s.values.filter(has));
  const axis = ticks(Math.max(1, ...values, ...markers.map((m) => m.value)) * 1.05);
  const max = axis.at(-1);
  const x = (i) => left + ((width - left - right) * i) / Math.max(1, xs.length - 1);
  const y = (v) => height - bottom - ((height - top - bottom) * v) / max;
  const palette = ['#2f6fb3', '#27ae60', '#8e44ad', '#d9822b'];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${(width - right + left) / 2}" y="26" text-anchor="middle" font-size="16" font-weight="600">${esc(title)}</text>`,
  ];
  for (const v of axis) {
    parts.push(
      `<line x1="${left}" y1="${y(v)}" x2="${width - right}" y2="${y(v)}" stroke="#e3e5e8"/>`,
      `<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end" fill="#555">${fmt(v)}</text>`,
    );
  }
  parts.push(`<text x="${left - 8}" y="${top - 22}" text-anchor="end" fill="#555">${esc(unit)}</text>`);
  xs.forEach((label, i) => {
    parts.push(
      `<text x="${x(i)}" y="${height - bottom + 22}" text-anchor="middle" fill="#333">${esc(label)}</text>`,
    );
  });
  for (const m of markers) {
    parts.push(
      `<line x1="${left}" y1="${y(m.value)}" x2="${width - right}" y2="${y(m.value)}" stroke="${COLORS.target}" stroke-dasharray="5 4" stroke-width="1.5"/>`,
      `<text x="${left + 6}" y="${y(m.value) - 5}" fill="${COLORS.target}" font-size="12">${esc(m.label)}</text>`,
    );
  }
  series.forEach((s, k) => {
    const color = palette[k % palette.length];
    const points = s.values.map((v, i) => (has(v) ? `${x(i)},${y(v)}` : null)).filter(Boolean);
    if (points.length > 1) {
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2.5" points="${points.join(' ')}"/>`);
    }
    s.values.forEach((v, i) => {
      if (has(v)) parts.push(`<circle cx="${x(i)}" cy="${y(v)}" r="4" fill="${color}"/>`);
    });
    const ly = top + 20 + k * 22;
    parts.push(
      `<rect x="${width - right + 10}" y="${ly - 14}" width="14" height="14" fill="${color}"/>`,
      `<text x="${width - right + 30}" y="${ly - 2}">${esc(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

// --- the report ----------------------------------------------------------------------------------------

export async function writeReport(r, docsDir) {
  const m = r.machine;
  const size = r.config.sizeMiB;
  const ceiling = r.ceiling?.onePass;
  const wp = r.workerPass?.discard;
  const wpRatio = ratio(wp?.mbps, ceiling);
  // The gateway's own ingest: the upload with its follower held back, so no worker shares the cores (with
  // pipelining the worker hashes and encrypts on them while the upload arrives; section 3 shows both).
  const ingest = r.e2eLocalUnpipelined ?? r.e2eLocal;
  const ingestRatio = ratio(ingest?.ingestMbps, r.ingestBaseline?.mbps);
  const plainRatio = ratio(r.e2eS3?.mbps, r.plainS3?.mbps);
  const rcloneRatio = ratio(r.rclone?.seconds, r.e2eS3?.seconds);
  const seedSpeed = ratio(r.seed?.seconds, r.e2eS3?.seconds);
  const seedMemWorker = ratio(r.seed?.peakMiB, r.e2eS3?.workerMiB);
  const seedMemSum = ratio(r.seed?.peakMiB, (r.e2eS3?.workerMiB ?? NaN) + (r.e2eS3?.gatewayMiB ?? NaN));
  const gatewayPeak = Math.max(
    ...[
      r.e2eLocal?.gatewayMiB,
      r.e2eS3?.gatewayMiB,
      r.download?.local?.gatewayMiB,
      r.download?.s3?.gatewayMiB,
      r.tus?.gatewayMiB,
    ].filter(has),
  );
  const workerPeak = Math.max(
    ...[r.e2eLocal?.workerMiB, r.e2eS3?.workerMiB, r.smallFiles?.workerMiB].filter(has),
  );
  const scaling = r.scaling ?? [];
  const e2eScaling = r.e2eScaling ?? [];
  const growth = (rows, key) =>
    rows.length > 1 && has(rows[0][key]) && has(rows.at(-1)[key])
      ? rows.at(-1)[key] - rows[0][key]
      : undefined;
  const passGrowth = growth(scaling, 'peakMiB');
  const gatewayGrowth = growth(e2eScaling, 'gatewayMiB');
  const workerGrowth = growth(e2eScaling, 'workerMiB');
  // "Flat": peak RSS grows by at most 10 % of the growth in file size (a design that holds the file in
  // memory grows by 100 % or more of it, as the seed-style baseline does).
  const sizeGrowth = scaling.length > 1 ? scaling.at(-1).mib - scaling[0].mib : undefined;
  const FLAT = has(sizeGrowth) ? sizeGrowth * 0.1 : undefined;
  const flat = [passGrowth, gatewayGrowth, workerGrowth].filter(has);
  const sf = r.smallFiles;
  const tusRatio = r.tus?.ratio;
  const afterLocal = r.e2eLocal?.afterLastByteSeconds;
  const afterS3 = r.e2eS3?.afterLastByteSeconds;
  const live = r.e2eLocalUnpipelined;
  const liveRatio = ratio(live?.workerSeconds, r.workerPass?.local?.seconds);
  // Pipelined end to end against the gateway's ingest alone (the same upload with its follower held back).
  const pipelineRatio = ratio(r.e2eLocal?.mbps, r.e2eLocalUnpipelined?.ingestMbps);

  const targets = [
    {
      what: 'Worker pass / single-core ceiling of the four primitives',
      target: '>= 1.2x (never < 0.8x)',
      measured: `${times(wpRatio)} (${mbs(wp?.mbps)} vs ${mbs(ceiling)})`,
      verdict: verdict(has(wpRatio) ? wpRatio >= 1.2 : undefined, has(wpRatio) ? wpRatio >= 0.8 : undefined),
    },
    {
      what: 'Gateway ingest (encrypting into staging) / bare Node HTTP server to disk',
      target: '>= 0.6x',
      measured: `${times(ingestRatio)} (${mbs(ingest?.ingestMbps)} vs ${mbs(r.ingestBaseline?.mbps)})`,
      verdict: verdict(has(ingestRatio) ? ingestRatio >= 0.6 : undefined),
    },
    {
      what: 'End to end on s3rver / plain multipart upload to the same s3rver',
      target: '>= 0.85x',
      measured: `${times(plainRatio)} (${mbs(r.e2eS3?.mbps)} vs ${mbs(r.plainS3?.mbps)})`,
      verdict: verdict(has(plainRatio) ? plainRatio >= 0.85 : undefined),
    },
    {
      what: 'End to end on s3rver vs rclone crypt (time ratio rclone / TESS)',
      target: '> 1x (TESS faster)',
      measured: `${times(rcloneRatio)} (${sec(r.e2eS3?.seconds)} vs ${sec(r.rclone?.seconds)})`,
      verdict: verdict(has(rcloneRatio) ? rcloneRatio > 1 : undefined),
    },
    {
      what: 'Seed-style baseline: time ratio seed / TESS',
      target: '> 1x (TESS faster)',
      measured: `${times(seedSpeed)} (${sec(r.seed?.seconds)} vs ${sec(r.e2eS3?.seconds)})`,
      verdict: verdict(has(seedSpeed) ? seedSpeed > 1 : undefined),
    },
    {
      what: 'Seed-style baseline: peak memory ratio seed / TESS worker',
      target: '>= 4x',
      measured: `${times(seedMemWorker)} (${mib(r.seed?.peakMiB)} vs ${mib(r.e2eS3?.workerMiB)}; vs gateway + worker together: ${times(seedMemSum)})`,
      verdict: verdict(has(seedMemWorker) ? seedMemWorker >= 4 : undefined),
    },
    {
      what: `Pipelining: last byte received (the 202) -> \`stored\`, ${size} MiB, local store / s3rver`,
      target: '< 0.5 s / < 1.5 s',
      measured: `${sec(afterLocal)} / ${sec(afterS3)} (without pipelining, local: ${sec(r.e2eLocalUnpipelined?.afterLastByteSeconds)})`,
      verdict: verdict(has(afterLocal) && has(afterS3) ? afterLocal < 0.5 && afterS3 < 1.5 : undefined),
    },
    {
      what: 'Pipelining: end to end, local store / gateway ingest alone',
      target: '>= 0.8x',
      measured: `${times(pipelineRatio)} (${mbs(r.e2eLocal?.mbps)} vs ${mbs(r.e2eLocalUnpipelined?.ingestMbps)})`,
      verdict: verdict(has(pipelineRatio) ? pipelineRatio >= 0.8 : undefined),
    },
    {
      what: `Gateway peak RSS during a ${size} MiB upload or download`,
      target: '< 150 MiB',
      measured: mib(gatewayPeak),
      verdict: verdict(has(gatewayPeak) ? gatewayPeak < 150 : undefined),
    },
    {
      what: 'Worker peak RSS (concurrency 2)',
      target: '< 256 MiB',
      measured: mib(workerPeak),
      verdict: verdict(has(workerPeak) ? workerPeak < 256 : undefined),
    },
    {
      what: `Memory flat from 8 to ${size} MiB (growth of peak RSS)`,
      target: `flat: growth <= 10 % of the ${fmt(sizeGrowth)} MiB size growth (${fmt(FLAT, 1)} MiB)`,
      measured: `worker pass ${has(passGrowth) ? `${fmt(passGrowth, 1)} MiB` : 'n/a'}, gateway ${has(gatewayGrowth) ? `${fmt(gatewayGrowth, 1)} MiB` : 'n/a'}, worker process ${has(workerGrowth) ? `${fmt(workerGrowth, 1)} MiB` : 'n/a'}`,
      verdict: verdict(flat.length && has(FLAT) ? flat.every((g) => g <= FLAT) : undefined),
    },
    {
      what: 'Small files: throughput, p95 upload-accepted-to-stored',
      target: '>= 200 files/s with p95 < 500 ms, one file per request (never < 50 files/s)',
      measured: `${fmt(sf?.filesPerSecond)} files/s, p95 ${ms(sf?.p95Ms)}; ${fmt(smallCpu(sf), 1)} ms CPU per file`,
      verdict: verdict(
        sf ? sf.filesPerSecond >= 200 && sf.p95Ms < 500 : undefined,
        sf ? sf.filesPerSecond >= 50 : undefined,
      ),
    },
    {
      what: `Resumable upload (tus, ${fmt(r.tus?.chunkMiB)} MiB chunks) / multipart upload of the same file`,
      target: '>= 0.8x',
      measured: `${times(tusRatio)} (${mbs(r.tus?.uploadMbps)} vs ${mbs(r.tus?.multipartMbps)})`,
      verdict: verdict(has(tusRatio) ? tusRatio >= 0.8 : undefined),
    },
    {
      what: `Listing and name search at ${fmt(r.listing?.files)} files of one user: worst p95 of a page of 50`,
      target: '< 50 ms',
      measured: ms(r.listing?.worstP95Ms),
      verdict: verdict(has(r.listing?.worstP95Ms) ? r.listing.worstP95Ms < 50 : undefined),
    },
    scaleOutTarget(r),
    {
      // Issue 21 target 2, second half. The upload with its follower held back: with pipelining the pass
      // runs while the upload arrives, and what is left after the claim is not a pass.
      what: 'Live worker pass (the real worker process, local store, pipelining off) / bare pass into the local store (time)',
      target: '<= 1.15x',
      measured: `${times(liveRatio)} (${sec(live?.workerSeconds)} vs ${sec(r.workerPass?.local?.seconds)})`,
      verdict: verdict(has(liveRatio) ? liveRatio <= 1.15 : undefined),
    },
  ];
  /** A row of the targets table by the start of its name (the sections below quote their verdicts). */
  const target = (name) => targets.find((t) => t.what.startsWith(name));

  const throughputSvg = barChart({
    title: `${size} MiB file: throughput on this machine (higher is better)`,
    unit: 'MB/s',
    rows: [
      { label: 'openssl: 1-core ceiling, gcm-dec+sha1+sha256+gcm', value: ceiling, kind: 'ceiling' },
      { label: 'Worker pass (hash + encrypt, discard)', value: wp?.mbps },
      { label: 'Worker pass into the local store', value: r.workerPass?.local?.mbps },
      { label: 'Bare Node server: POST to disk', value: r.ingestBaseline?.mbps, kind: 'peer' },
      { label: 'Gateway ingest alone (until 202)', value: ingest?.ingestMbps },
      { label: 'Gateway ingest over tus (8 MiB chunks)', value: r.tus?.uploadMbps },
      { label: 'TESS end to end, local store', value: r.e2eLocal?.mbps },
      { label: 'TESS end to end, s3rver', value: r.e2eS3?.mbps },
      { label: 'Plain multipart to s3rver (no crypto)', value: r.plainS3?.mbps, kind: 'peer' },
      { label: 'rclone crypt to s3rver', value: r.rclone?.mbps, kind: 'peer' },
      { label: 'Seed-style baseline to s3rver', value: r.seed?.mbps, kind: 'peer' },
      { label: 'TESS download + verify, local store', value: r.download?.local?.mbps },
      { label: 'TESS download + verify, s3rver', value: r.download?.s3?.mbps },
    ],
    markers: has(ceiling)
      ? [{ value: ceiling * 1.2, label: 'target: worker pass >= 1.2x the 1-core ceiling' }]
      : [],
  });
  const memorySvg = barChart({
    title: `Peak resident memory around a ${size} MiB file (lower is better)`,
    unit: 'MiB',
    rows: [
      { label: 'Gateway: upload (local store)', value: r.e2eLocal?.gatewayMiB },
      { label: 'Gateway: upload (s3rver)', value: r.e2eS3?.gatewayMiB },
      { label: 'Gateway: tus upload (local store)', value: r.tus?.gatewayMiB },
      { label: 'Gateway: download (local store)', value: r.download?.local?.gatewayMiB },
      { label: 'Gateway: download (s3rver)', value: r.download?.s3?.gatewayMiB },
      { label: 'Worker: end to end (local store)', value: r.e2eLocal?.workerMiB },
      { label: 'Worker: end to end (s3rver)', value: r.e2eS3?.workerMiB },
      { label: `Worker: ${r.config.smallFiles} small files`, value: sf?.workerMiB },
      { label: 'Plain multipart (Node + SDK)', value: r.plainS3?.peakMiB, kind: 'peer' },
      { label: 'rclone crypt', value: r.rclone?.peakMiB, kind: 'peer' },
      { label: 'Seed-style baseline', value: r.seed?.peakMiB, kind: 'peer' },
    ],
    markers: [
      { value: 150, label: 'target: gateway < 150 MiB' },
      { value: 256, label: 'target: worker < 256 MiB' },
    ],
    cap: 600,
  });
  const scalingSvg = lineChart({
    title: 'Peak RSS by file size: flat means memory does not follow the file',
    unit: 'MiB',
    xs: scaling.map((s) => `${s.mib} MiB`),
    series: [
      { label: 'worker pass (process)', values: scaling.map((s) => s.peakMiB) },
      { label: 'worker (end to end)', values: e2eScaling.map((s) => s.workerMiB) },
      { label: 'gateway (end to end)', values: e2eScaling.map((s) => s.gatewayMiB) },
    ],
    markers: [
      { value: 150, label: 'gateway target < 150 MiB' },
      { value: 256, label: 'worker target < 256 MiB' },
    ],
  });
  await writeFile(join(docsDir, 'benchmarks-throughput.svg'), throughputSvg);
  await writeFile(join(docsDir, 'benchmarks-memory.svg'), memorySvg);
  await writeFile(join(docsDir, 'benchmarks-scaling.svg'), scalingSvg);
  const scaleOut = scaleOutSections(r);
  for (const [name, svg] of Object.entries(scaleOut.charts)) await writeFile(join(docsDir, name), svg);

  const load = (l) => (l ? l.map((v) => v.toFixed(2)).join(' / ') : 'n/a');
  const md = [];
  md.push(
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/run.mjs). Do not edit by hand: rerun it. -->',
    '',
    `Measured ${m.date.slice(0, 16).replace('T', ' ')} UTC by \`npm run bench\` in one run of ${fmt(r.totalSeconds / 60, 1)} min; every ratio below compares numbers taken in that same run.`,
    '',
    table(
      ['machine', ''],
      [
        [
          'CPU',
          `${m.cpu}, ${m.cores} cores available${m.aesni ? ', AES-NI' : ''}${m.shani ? ', SHA-NI' : ''}`,
        ],
        ['memory, kernel', `${fmt(m.memoryGiB, 1)} GiB, Linux ${m.kernel}`],
        ['software', `Node.js ${m.node}; ${m.openssl}; ${m.rclone ?? 'rclone not installed'}`],
        ['load average (1/5/15 min)', `before ${load(m.loadBefore)}; after ${load(m.loadAfter)}`],
        [
          'workload',
          `${size} MiB of random bytes (page cache), ${r.config.smallFiles} files of 16 KiB; medians of ${r.config.repeats} runs where repeated`,
        ],
      ],
    ),
    '',
    'MB/s is 10^6 bytes per second of plaintext (as `openssl speed` counts); sizes are MiB. Peak RSS is the',
    "process's resident-memory high-water mark over the measured phase (`/proc/PID/clear_refs` reset, then",
    '`VmHWM`, cross-checked by sampling `VmRSS` every 100 ms); for one-shot child processes it is',
    '`getrusage` maxRSS or `/usr/bin/time -v`.',
    '',
    '## Targets',
    '',
    table(
      ['target (issues 7, 14 and 21)', 'wanted', 'measured', 'verdict'],
      targets.map((t) => [t.what, t.target, t.measured, t.verdict]),
    ),
    '',
    '![Throughput](benchmarks-throughput.svg)',
    '',
    '![Peak memory](benchmarks-memory.svg)',
    '',
  );

  md.push(
    '## 1. Ceiling: one core doing the four primitives',
    '',
    '`openssl speed [-decrypt] -evp <alg> -bytes 16384 -seconds 2` (single core, 16 KiB blocks; the last row with',
    '`-multi <cores>`: what all cores deliver together, which on a VM can be far less than the core count). Uploads are',
    'staged encrypted (docs/format.md, staging format), so one pass must AES-256-GCM-decrypt the staging',
    'records, SHA-1 and SHA-256 the plaintext and AES-256-GCM-encrypt it again: on one core it cannot beat',
    '1 / (1/a + 1/b + 1/c + 1/d).',
    '',
    table(
      ['primitive', 'MB/s'],
      [
        ['AES-256-GCM decrypt (staging records)', fmt(r.ceiling?.gcmDecrypt)],
        ['AES-256-GCM encrypt (object segments)', fmt(r.ceiling?.gcm)],
        ['SHA-1', fmt(r.ceiling?.sha1)],
        ['SHA-256', fmt(r.ceiling?.sha256)],
        ['**implied one-pass ceiling (one core)**', `**${fmt(ceiling)}**`],
        ['(without staging decryption: the three primitives of the object)', fmt(r.ceiling?.threePrimitives)],
        ...(has(r.ceiling?.gcmAllCores) && r.machine.cores > 1
          ? [
              [
                `AES-256-GCM encrypt on all ${r.machine.cores} cores at once (\`-multi ${r.machine.cores}\`, their total)`,
                `${fmt(r.ceiling.gcmAllCores)} (${times(r.ceiling.gcmAllCores / r.ceiling.gcm)} one core)`,
              ],
            ]
          : []),
      ],
    ),
    ...(has(r.ceiling?.pageCache?.justFreed)
      ? [
          '',
          `Not a primitive, but what every phase that writes a file pays: ${size} MiB written into the page cache (no fsync), ` +
            `${fmt(r.ceiling.pageCache.notRecentlyUsed)} MB/s into memory the page cache had not held lately and ` +
            `${fmt(r.ceiling.pageCache.justFreed)} MB/s into memory freed a moment before` +
            (r.ceiling.pageCache.justFreed > 2 * r.ceiling.pageCache.notRecentlyUsed
              ? ` (${times(r.ceiling.pageCache.justFreed / r.ceiling.pageCache.notRecentlyUsed)}). This VM's host backs guest memory lazily and takes freed memory back ` +
                '(virtio-balloon with free page reporting), so a write into memory not touched lately costs a host fault per page; ' +
                'rows that write staging files or objects (the local store, s3rver) swing with whichever memory they get. The bench therefore deletes ' +
                'each measured upload before the next run, as the bare pass removes its files, so repeated runs write into memory just freed, as a ' +
                "long-running server recycles its page cache (kept, they made the live worker's pass 2.0 s instead of 0.8-1.2 s); " +
                'the first large upload of the TESS processes is shown apart (section 3) or left untimed (section 4).'
              : '.'),
        ]
      : []),
    '',
    '## 2. Worker pass (no network)',
    '',
    `The crypto worker's own \`EncryptFileHandler.run()\` (built code from dist/) over a ${size} MiB staged upload, as a`,
    'job runs it: staging records decrypted and verified into shared buffers -> SHA-1 and SHA-256 on two hash',
    'threads, AES-256-GCM segments on the main thread meanwhile -> object store. The upload is staged by the',
    "gateway's own `StagingWriter` before the clock starts. The database, audit log and key provider are in-memory",
    'stand-ins (bench/worker-pass.mjs);',
    'each run is a fresh `node` process with the worker environment of scripts/runtime-env.mjs, which first runs',
    'one 8 MiB job (untimed), as a running worker has by the time a large file arrives: its hash threads and type',
    'detector started, its code compiled. The "first job of a fresh process" row leaves that job out.',
    '',
    table(
      [
        'sink',
        'MB/s (median)',
        'range',
        'vs ceiling',
        'CPU s / wall s',
        'peak RSS',
        'RSS after loading modules',
      ],
      [
        ['discard (CPU only)', wp],
        ['local object store (write + fsync)', r.workerPass?.local],
        ['discard, malware scanning on (clamd on loopback)', r.workerPass?.scanning],
        ...(r.workerPass?.cold ? [['discard, first job of a fresh process', r.workerPass.cold]] : []),
      ].map(([label, s]) => [
        label,
        fmt(s?.mbps),
        has(s?.minMbps) ? `${fmt(s.minMbps)}-${fmt(s.maxMbps)}` : 'n/a',
        times(ratio(s?.mbps, ceiling)),
        has(s?.cpuSeconds) ? `${fmt(s.cpuSeconds, 2)} / ${fmt(s.seconds, 2)}` : 'n/a',
        mib(s?.peakMiB),
        mib(s?.baseMiB),
      ]),
    ),
    '',
    r.workerPass?.scanning?.skipped
      ? `Scanning row not measured: ${r.workerPass.scanning.skipped}.`
      : `With scanning on, each byte is also streamed to clamd (INSTREAM over loopback TCP) in the same pass; clamd itself spent ${fmt(r.workerPass?.scanning?.endpointCpuSeconds, 2)} CPU-s per run in its own process, with the tests' two-signature database (test/support/clamav): the official database makes clamd's matching slower, not TESS's side of it.`,
    '',
    `Target: >= 1.2x the ceiling (${fmt(ceiling ? ceiling * 1.2 : undefined)} MB/s), i.e. both cores on one large file; never below 0.8x (${fmt(ceiling ? ceiling * 0.8 : undefined)} MB/s). Verdict: ${target('Worker pass / single-core').verdict}.`,
    '',
  );

  md.push(
    '## 3. End to end through the gateway',
    '',
    `A ${size} MiB file POSTed to \`/api/v1/uploads\` (multipart, streamed in 1 MiB chunks, bearer token) to the`,
    'real gateway process, then the real crypto worker process (concurrency 2) until the row is `stored`.',
    'Time runs from the first byte sent to `stored_at`. Uploads are pipelined (docs/security.md item 40): a',
    'follower hashes, encrypts and stores the file while it arrives, so "last byte -> stored" is what is left',
    'after the 202; the "pipelining off" row is the same upload with its follower held back (the follower',
    'queue paused), where the worker starts only after the last byte and the gateway ingests alone.',
    '',
    table(
      [
        'store',
        'seconds',
        'MB/s',
        'until 202',
        'last byte -> stored',
        'queue wait',
        'worker pass',
        'CPU s gateway + worker + client',
        'gateway peak RSS',
        'worker peak RSS',
      ],
      [
        ['local', r.e2eLocal],
        ['local, pipelining off', r.e2eLocalUnpipelined],
        ['local, the first 512 MiB upload of the processes', r.e2eLocalFirst],
        ['local, pipelining off, after 15 s without requests', r.e2eLocalAfterIdle],
        ['s3rver', r.e2eS3],
      ]
        .filter(([, e]) => e)
        .map(([label, e]) => [
          label,
          sec(e?.seconds),
          fmt(e?.mbps),
          sec(e?.ingestSeconds),
          sec(e?.afterLastByteSeconds),
          sec(e?.queueSeconds),
          has(e?.workerSeconds) ? `${sec(e.workerSeconds)} (${mbs(e.workerMbps)})` : 'n/a',
          has(e?.gatewayCpuSeconds)
            ? `${fmt(e.gatewayCpuSeconds, 2)} + ${fmt(e.workerCpuSeconds, 2)} + ${fmt(e.clientCpuSeconds, 2)}`
            : 'n/a',
          mib(e?.gatewayMiB),
          mib(e?.workerMiB),
        ]),
    ),
    '',
    'With pipelining, `queue wait` and `worker pass` count from the claim, which a follower makes when the',
    'upload is accepted: the pass is then mostly done, and `worker pass` is the part of it left after the 202.',
    "The client's CPU is this bench process (it sends the file and polls the row) on the same cores. The first",
    '512 MiB upload of the processes is shown apart (it is slower, see the findings); each later run is deleted',
    'before the next, and the rows above are their medians.',
    'The "after 15 s without requests" row is one more unpipelined upload after a pause: the first upload a server',
    "takes after a quiet spell (V8 sizes the heap by its recent use; scripts/runtime-env.mjs, the gateway's old-generation floor).",
    '',
    `Resident memory right after start, idle: gateway ${mib(r.idle?.local?.gatewayMiB)}, worker ${mib(r.idle?.local?.workerMiB)} (local store); gateway ${mib(r.idle?.s3?.gatewayMiB)}, worker ${mib(r.idle?.s3?.workerMiB)} (s3). Every peak above starts from there.`,
    '',
    '### The memory floor: loading the code',
    '',
    'Resident memory of a fresh `node` process (no GLIBC_TUNABLES) after importing one module and doing nothing,',
    'and its V8 heap before and after a full collection (most of what loading allocates is garbage at once). The',
    'last rows are the started gateway, idle, with its runtime environment: the AWS SDK loads only with the S3',
    'store, and SimpleWebAuthn, otplib, qrcode, bull-board, nodemailer, pino-pretty and the OpenAPI document only on first use.',
    '',
    table(
      ['imported', 'RSS', 'V8 heap used', 'after a full GC'],
      [
        ...(r.footprint ?? []).map((f) => [f.label, mib(f.rssMiB), mib(f.heapUsedMiB), mib(f.liveHeapMiB)]),
        ['gateway started, idle: STORAGE_DRIVER=local', mib(r.idle?.local?.gatewayMiB), 'n/a', 'n/a'],
        ['gateway started, idle: STORAGE_DRIVER=s3', mib(r.idle?.s3?.gatewayMiB), 'n/a', 'n/a'],
      ],
    ),
    '',
    '### Ingest: gateway vs a bare Node HTTP server',
    '',
    'bench/ingest-server.mjs streams the same POST body to a file with 1 MiB write buffers and fsyncs it',
    '(what the gateway does with an upload, minus multipart parsing, authentication and the database).',
    "The gateway's row is the upload of section 3 with its follower held back: with pipelining on, the",
    'worker hashes and encrypts on the same two cores while the upload arrives (section 3, first row).',
    '',
    table(
      ['receiver', 'seconds until answered', 'MB/s', 'CPU s per GiB', 'peak RSS'],
      [
        [
          'bare Node HTTP server',
          sec(r.ingestBaseline?.seconds),
          fmt(r.ingestBaseline?.mbps),
          fmt(r.ingestBaseline?.cpuSeconds / (size / 1024), 2),
          mib(r.ingestBaseline?.peakMiB),
        ],
        [
          r.e2eLocalUnpipelined
            ? 'TESS gateway (until 202), encrypting into staging, no follower on the cores'
            : 'TESS gateway (until 202), encrypting into staging',
          sec(ingest?.ingestSeconds),
          fmt(ingest?.ingestMbps),
          // The gateway's CPU from the first byte until the row is stored (it relays progress meanwhile).
          fmt(ingest?.gatewayCpuSeconds / (size / 1024), 2),
          mib(ingest?.gatewayMiB),
        ],
        [
          '**ratio**',
          '',
          `**${times(ingestRatio)}** (target >= 0.6x: ${target('Gateway ingest').verdict})`,
          '',
          '',
        ],
      ],
    ),
    '',
  );

  md.push(
    '## 4. Peers on the same s3rver and file',
    '',
    `All upload the same ${size} MiB file to the same s3rver (one process, loopback), interleaved run by run.`,
    '',
    table(
      [
        'contender',
        'what it does',
        'seconds',
        'MB/s',
        'CPU s',
        's3rver CPU s',
        'peak RSS',
        'TESS speedup',
        'memory vs TESS worker',
      ],
      [
        [
          '**TESS** end to end',
          'HTTP upload, SHA-1 + SHA-256 + AES-256-GCM, 8 MiB parts x4',
          r.e2eS3,
          'workerMiB',
        ],
        ['plain multipart', 'S3ObjectStore.put of the file: no hashing, no encryption', r.plainS3, 'peakMiB'],
        ['rclone crypt', '`rclone copyto` to a crypt remote, `--s3-chunk-size 5M`', r.rclone, 'peakMiB'],
        [
          'seed-style baseline',
          'whole file in memory, SHA-1, AES-256-CBC, sequential 5 MiB parts',
          r.seed,
          'peakMiB',
        ],
      ].map(([label, what, s, memKey]) => [
        label,
        what,
        sec(s?.seconds),
        fmt(s?.mbps),
        s === r.e2eS3
          ? `${fmt((s?.gatewayCpuSeconds ?? Number.NaN) + (s?.workerCpuSeconds ?? Number.NaN), 2)} (gateway + worker)`
          : fmt(s?.cpuSeconds, 2),
        fmt(s?.endpointCpuSeconds, 2),
        mib(s?.[memKey]),
        s === r.e2eS3 ? '1.00x' : times(ratio(s?.seconds, r.e2eS3?.seconds)),
        s === r.e2eS3 ? '1.00x' : times(ratio(s?.[memKey], r.e2eS3?.workerMiB)),
      ]),
    ),
    '',
    `TESS end to end / plain multipart rate: **${times(plainRatio)}** (target >= 0.85x: ${target('End to end on s3rver / plain').verdict}).`,
    `TESS vs rclone crypt: ${target('End to end on s3rver vs rclone').verdict}. Seed-style baseline: speed ${target('Seed-style baseline: time').verdict}, memory ${target('Seed-style baseline: peak memory').verdict}`,
    `(the TESS worker's peak is compared; the seed script did in one process what TESS splits between the gateway`,
    `and the worker, whose peaks together are ${mib((r.e2eS3?.workerMiB ?? NaN) + (r.e2eS3?.gatewayMiB ?? NaN))}, ${times(seedMemSum)} less than the seed).`,
    '',
  );
  if (has(r.seed?.readSeconds)) {
    md.push(
      `Seed-style baseline phases: read ${sec(r.seed.readSeconds)}, SHA-1 + CBC ${sec(r.seed.cryptoSeconds)}, sequential upload ${sec(r.seed.uploadSeconds)}.`,
      '',
    );
  }

  md.push(
    '## 5. Many small files',
    '',
    `${r.config.smallFiles} files of 16 KiB through \`/api/v1/uploads\` (8 requests in flight), with ${sf?.workers ?? 2} crypto`,
    'worker processes (concurrency 2 each) on the local store: one file per request (the target), then as many files',
    `again, ${r.smallFilesBatched?.perRequest ?? 10} to a multipart request (a client that batches). Latency is \`stored_at - created_at\``,
    'of each row (the row is created when the upload is accepted, just before the 202).',
    '',
    table(
      [
        'files per request',
        'files',
        'seconds (first request to last stored)',
        'files/s',
        'uploads accepted/s',
        'p50',
        'p95',
        'max',
        'gateway peak RSS',
        'worker peak RSS',
      ],
      smallRows(r).map((row) => [
        fmt(row.perRequest ?? 1),
        fmt(row.files),
        sec(row.seconds),
        `**${fmt(row.filesPerSecond)}**`,
        fmt(row.uploadsPerSecond),
        ms(row.p50Ms),
        `**${ms(row.p95Ms)}**`,
        ms(row.maxMs),
        mib(row.gatewayMiB),
        mib(row.workerMiB),
      ]),
    ),
    '',
    'CPU per file of every process that works for the files (user + system time from /proc/PID/stat over the phase,',
    "divided by the files): the gateway, both workers together, the PostgreSQL backends serving them (the bench's own",
    'polling connections excluded), the Redis server (less what it used per second before the phase, for its other',
    'clients), and this client, which sends the requests on the same cores.',
    '',
    table(
      [
        'files per request',
        'gateway',
        'workers',
        'PostgreSQL',
        'Redis',
        'TESS total',
        'client',
        'machine busy',
      ],
      smallRows(r).map((row) => [
        fmt(row.perRequest ?? 1),
        ms(row.gatewayCpuMsPerFile),
        ms(row.workerCpuMsPerFile),
        ms(row.postgresCpuMsPerFile),
        ms(row.redisCpuMsPerFile),
        `**${ms(smallCpu(row))}**`,
        ms(row.clientCpuMsPerFile),
        has(row.machineBusy) ? `${fmt(row.machineBusy * 100)} %` : 'n/a',
      ]),
    ),
    '',
    `${m.cores} cores give 200 files/s only if TESS spends less than ${ms((m.cores * 1000) / 200)} of CPU per file, client included.`,
    'What is per file rather than per request, and what was cut from it (issue 21): a small file sends no progress event',
    '(its first chunk used to send one: a queue script, a stream entry and a socket event); its `file.stored` audit event',
    "commits in the stored row's transaction; the version row and the file's current facts are one statement; the audit",
    'trail writes the events of concurrent requests in one transaction (group commit); the hot row updates are plain',
    'SQL rather than query builders; the gateway writes a small staging file in one write (header, record and seal) and',
    'the worker reads it in one read. Every fsync stays: the staging file before the 202, the object and its directory',
    'before the `stored` commit.',
    '',
    `Target: >= 200 files/s with p95 < 500 ms, one file per request, never below 50 files/s. Verdict: ${target('Small files').verdict}.`,
    '',
    '## 6. Download',
    '',
    `\`GET /api/v1/files/:id/content\` of the ${size} MiB file: the gateway fetches the object, checks every GCM tag and the`,
    'SHA-256 recorded at upload, and streams the plaintext. Ranged read: 1 MiB from the middle of the file',
    '(`Range: bytes=mid-(mid+1MiB-1)`), median of 9 after one warm-up.',
    '',
    table(
      [
        'store',
        'seconds',
        'MB/s',
        'gateway CPU s',
        'gateway peak RSS',
        'ranged 1 MiB (median)',
        'ranged min-max',
      ],
      ['local', 's3'].map((k) => {
        const d = r.download?.[k];
        return [
          k === 's3' ? 's3rver' : k,
          sec(d?.seconds),
          fmt(d?.mbps),
          fmt(d?.gatewayCpuSeconds, 2),
          mib(d?.gatewayMiB),
          ms(d?.rangeMs),
          has(d?.rangeMinMs) ? `${ms(d.rangeMinMs)}-${ms(d.rangeMaxMs)}` : 'n/a',
        ];
      }),
    ),
    '',
    '## 7. Scaling: memory stays flat as the file grows',
    '',
    table(
      [
        'file',
        'worker pass MB/s',
        'worker pass peak RSS',
        'end to end MB/s (local)',
        'gateway peak RSS',
        'worker peak RSS',
      ],
      scaling.map((s, i) => {
        const e = e2eScaling[i];
        return [
          `${s.mib} MiB`,
          fmt(s.mbps),
          mib(s.peakMiB),
          fmt(e?.mbps),
          mib(e?.gatewayMiB),
          mib(e?.workerMiB),
        ];
      }),
    ),
    '',
    `Growth of peak RSS from the smallest to the largest file: ${target('Memory flat').measured}. Verdict: ${target('Memory flat').verdict}.`,
    'Small files run at lower MB/s because process and pipeline start-up costs are fixed.',
    '',
    '![Scaling](benchmarks-scaling.svg)',
    '',
  );

  const tu = r.tus;
  md.push(
    '## 8. Resumable uploads (tus) against the multipart endpoint',
    '',
    `The ${fmt(tu?.mib)} MiB file with tus-js-client (${fmt(tu?.chunkMiB)} MiB PATCHes, each chunk read from disk in 1 MiB`,
    "pieces by the TESS CLI's file source, scripts/tus-file-reader.ts; the",
    "file's SHA-256 declared in `Upload-Metadata`) and with one multipart POST, alternating on the same",
    `gateway and worker (local store), ${fmt(tu?.runs)} runs each, medians. Upload time runs from the first request to`,
    "the final PATCH's answer (tus) or the 202 (multipart); the gateway's peak RSS is taken over the upload.",
    '',
    table(
      ['', 'tus', 'multipart'],
      [
        ['upload', mbs(tu?.uploadMbps), mbs(tu?.multipartMbps)],
        ['upload until stored', sec(tu?.seconds), sec(tu?.multipartSeconds)],
        [
          'final answer (last PATCH / 202) to stored',
          sec(tu?.toStoredSeconds),
          sec(tu?.multipartToStoredSeconds),
        ],
        ['gateway peak RSS during the upload', mib(tu?.gatewayMiB), mib(tu?.multipartGatewayMiB)],
        ['gateway CPU', sec(tu?.gatewayCpuSeconds), sec(tu?.multipartGatewayCpuSeconds)],
        ['worker CPU (following the upload)', sec(tu?.workerCpuSeconds), sec(tu?.multipartWorkerCpuSeconds)],
        [
          'client CPU (this bench process, on the same cores)',
          sec(tu?.clientCpuSeconds),
          sec(tu?.multipartClientCpuSeconds),
        ],
      ],
    ),
    '',
    `Ratio tus / multipart: ${times(tusRatio)} (target >= 0.8x): ${target('Resumable upload').verdict}. Above its idle`,
    `${mib(tu?.idleGatewayMiB)}, the gateway grew by ${mib(tu?.gatewayMiB - tu?.idleGatewayMiB)} during the tus upload`,
    `(${mib(tu?.multipartGatewayMiB - tu?.idleGatewayMiB)} during the multipart one): a chunk is streamed through the`,
    'staging writer, never held whole.',
    '',
  );

  const li = r.listing;
  md.push(
    `## 9. Listing and search at ${fmt(li?.files)} files of one user`,
    '',
    `${fmt(li?.files)} rows seeded straight into PostgreSQL for one user in the root folder (${sec(li?.seedSeconds)}), then pages`,
    `of ${fmt(li?.pageSize)} read through the gateway with a bearer token (JSON, access checks, the duplicate lookup):`,
    'the first page and 30 keyset pages after it per order, twice; name searches 40 times each. Every order has',
    'its btree index tie-broken on the id and the search a pg_trgm GIN index on the lower-cased name',
    '(migration 1765450000000); a page never uses OFFSET.',
    '',
    table(
      ['request', 'p50', 'p95', 'samples'],
      [
        ...Object.entries(li?.list ?? {}).map(([k, v]) => [
          `list, sorted by ${k}`,
          ms(v.p50Ms),
          ms(v.p95Ms),
          fmt(v.n),
        ]),
        ...Object.entries(li?.search ?? {}).map(([k, v]) => [
          `search \`${v.q}\`: ${k}, ${fmt(v.hits)} on the page`,
          ms(v.p50Ms),
          ms(v.p95Ms),
          fmt(v.n),
        ]),
      ],
    ),
    '',
    `Worst p95 ${ms(li?.worstP95Ms)} (target < 50 ms): ${target('Listing and name search').verdict}. The p50s show the cost of a page`,
    'itself; the p95s on a shared 2-core machine are mostly other processes (see the load average above).',
    '',
  );

  md.push(...scaleOut.md);

  md.push('## Where the worker pass spends its time', '');
  if (r.profile?.profiles?.length) {
    md.push(
      `\`node --cpu-prof\` of one ${size} MiB worker pass (discard sink; ${mbs(r.profile.mbps)} with the profiler on). Self time`,
      'by category and the top functions, per thread:',
      '',
    );
    for (const p of r.profile.profiles) {
      md.push(
        `**${p.name}** (wall ${ms(p.wallMs)}, sampled ${ms(p.sampledMs)})`,
        '',
        table(
          ['category', 'self ms', 'share'],
          p.categories.map((c) => [c.label, fmt(c.ms), `${fmt(c.share * 100, 1)} %`]),
        ),
        '',
        table(
          ['function', 'self ms', 'share'],
          p.functions.map((f) => [`\`${f.label}\``, fmt(f.ms), `${fmt(f.share * 100, 1)} %`]),
        ),
        '',
      );
    }
  } else {
    md.push('No profile was taken (the phase failed; see below).', '');
  }
  md.push(...analysis(r, { ceiling, wpRatio, ingestRatio, plainRatio }), '');

  if (r.notes.length || Object.keys(r.errors).length) {
    md.push('## Problems in this run', '');
    for (const note of r.notes) md.push(`- ${note}`);
    for (const [name, error] of Object.entries(r.errors)) {
      md.push(`- **${name}** failed:`, '', '```', error, '```');
    }
    md.push('');
  }

  md.push(
    '## How to rerun',
    '',
    '```sh',
    'npm run bench        # builds, then runs bench/run.mjs (about 4-7 minutes here)',
    '```',
    '',
    'Needs PostgreSQL and Redis as for `npm test`, `openssl`, and `rclone` for the rclone row',
    '(`apt-get install -y rclone`; it is started without `AWS_CA_BUNDLE`, which rclone 1.60 cannot load).',
    'Everything runs on loopback: the gateway, the worker(s), s3rver and the baselines are child processes',
    'with their own database (`tess_bench_*`), Redis prefix (`tess-bench-*`) and temp directory, all removed',
    'at the end, also after a failure or Ctrl+C. Knobs: `BENCH_SIZE_MIB` (512), `BENCH_SMALL_FILES` (1000), `BENCH_SMALL_PER_REQUEST` (10),',
    '`BENCH_REPEATS` (3), `BENCH_TIMEOUT_MIN` (25), `BENCH_SCALE_FILES` (16), `BENCH_SCALE_MIB` (64), `BENCH_BURST_FILES` (500),',
    '`BENCH_BURST_KIB` (256), `TEST_DATABASE_URL`, `TEST_REDIS_URL`;',
    '`BENCH_PHASES=ceiling,pass,profile,ingest,footprint,local,small,tus,s3,listing,scale,burst` runs only those phases and prints the',
    'results (this page is left alone); `BENCH_PROFILE_DIR=<dir>` makes the gateway and worker processes write',
    'CPU profiles. Run it on an idle machine: the load average is recorded above because other work on 2',
    'cores moves every number.',
    '`node bench/report.mjs` redraws this page and the charts from the results embedded at its end (no new run).',
    '',
    'Files: bench/run.mjs (orchestration), bench/worker-pass.mjs, bench/ingest-server.mjs (bare ingest baseline),',
    'bench/s3rver.mjs, bench/plain-put.mjs, bench/seed-baseline.mjs, bench/report.mjs (this page and the charts).',
    '',
  );
  // The raw results, so `node bench/report.mjs` can redraw this page and the charts without a new run.
  md.push(`<!-- bench-results ${JSON.stringify(r).replace(/--/g, '\\u002d\\u002d')} -->`, '');
  await writeFile(join(docsDir, 'benchmarks.md'), md.join('\n'));

  const summary = [
    `TESS benchmark (${m.cores} cores, Node ${m.node}, load ${load(m.loadBefore)} -> ${load(m.loadAfter)})`,
    ...targets.map(
      (t) => `  ${t.verdict.replace(/\*\*/g, '').padEnd(28)} ${t.what}: ${t.measured} [want ${t.target}]`,
    ),
    `  ceiling ${mbs(ceiling)}; worker pass ${mbs(wp?.mbps)}; e2e local ${mbs(r.e2eLocal?.mbps)}, s3 ${mbs(r.e2eS3?.mbps)}; last byte -> stored local ${sec(r.e2eLocal?.afterLastByteSeconds)} (pipelining off ${sec(r.e2eLocalUnpipelined?.afterLastByteSeconds)}), s3 ${sec(r.e2eS3?.afterLastByteSeconds)}; download ${mbs(r.download?.local?.mbps)}; ranged 1 MiB ${ms(r.download?.local?.rangeMs)}`,
  ].join('\n');
  return { summary, targets };
}

// --- 10 and 11: scale-out curve and the burst -----------------------------------------------------------

/**
 * Beyond one replica KEDA does not scale by itself: the HPA it creates reads KEDA's metric every
 * --horizontal-pod-autoscaler-sync-period of kube-controller-manager (15 s by default); the ScaledObject's
 * pollingInterval governs activation from and to zero replicas.
 */
const HPA_SYNC_SECONDS = 15;
const sum = (values) => values.reduce((total, v) => total + v, 0);
const pct = (v) => (has(v) ? `${fmt(v * 100)} %` : 'n/a');

/** What the curve and the burst derive: cores one worker process keeps busy, the CPU bound, per-file time. */
function scaleOutFacts(r) {
  const rounds = r.scaleOut?.rounds ?? [];
  const one = rounds[0];
  const b = r.burst;
  const cores = r.machine.cores;
  const oneCores = one ? sum(one.workerCpuSeconds) / one.seconds : undefined;
  // MB/s the machine's cores allow at the CPU cost one process paid per MiB (no process, no contention).
  const cpuBound = one ? ((cores / one.cpuSecondsPerMiB) * 1048576) / 1e6 : undefined;
  const perProcess = b ? b.drainFilesPerSecond / b.workers : undefined;
  // Time a worker process spends per file of `mb` MB: the fixed cost the burst shows, plus the bytes at
  // the rate one process reached on the curve (the burst's own bytes taken out of its fixed part).
  const burstMb = b ? (b.kib * 1024) / 1e6 : 0;
  const secondsPerFile = (mb) =>
    has(perProcess) && has(one?.mbps)
      ? Math.max(0, 1 / perProcess - burstMb / one.mbps) + mb / one.mbps
      : undefined;
  // A new pod takes jobs one metrics read (at the latest) plus its start-up after the queue grew.
  const reactSeconds = b?.keda ? HPA_SYNC_SECONDS + (one?.bootSeconds ?? 0) : undefined;
  return { rounds, one, b, oneCores, cpuBound, perProcess, secondsPerFile, reactSeconds, burstMb };
}

function scaleOutTarget(r) {
  const { rounds, one, b } = scaleOutFacts(r);
  const shown = rounds.length >= 3 && b !== undefined;
  return {
    what: `Scale-out curve (${rounds.map((s) => s.workers).join(', ') || '1, 2, 4'} worker processes on ${fmt(r.scaleOut?.files)} x ${fmt(r.scaleOut?.mib)} MiB) and queue wait under a burst of ${fmt(b?.files)} files`,
    target: 'curve shown, with where and why it flattens (informational)',
    measured: `${rounds.map((s) => `${s.workers}: ${mbs(s.mbps)} (${times(ratio(s.mbps, one.mbps))})`).join(', ') || 'n/a'}; burst queue wait p95 ${ms(b?.waitP95Ms)}, max ${fmt(b?.maxWaiting)} waiting`,
    verdict: shown ? '**SHOWN** (informational)' : 'NOT MEASURED',
  };
}

/** Sections 10 and 11 of the page, and their charts. */
function scaleOutSections(r) {
  const f = scaleOutFacts(r);
  const { rounds, one, b } = f;
  const m = r.machine;
  const so = r.scaleOut;
  const md = [
    `## 10. Scale-out: 1, 2 and 4 worker processes on ${fmt(so?.files)} files of ${fmt(so?.mib)} MiB`,
    '',
    `${fmt(so?.files)} files of ${fmt(so?.mib)} MiB, each its own POST, staged through the real gateway while the crypto queue is`,
    `paused (BullMQ \`Queue.pause\`), so neither the ingest nor the workers' start-up is in the time; then the worker`,
    `processes are started (concurrency ${fmt(so?.concurrency)} each, the ConfigMap's \`WORKER_CONCURRENCY\`), the machine is let`,
    'settle, the queue resumed and the clock runs until the last row is `stored` (local store, write + fsync).',
    "The files are deleted and staged again for the next point. CPU seconds are each process's own",
    "(/proc/PID/stat over the timed part); the machine's busy and I/O-wait shares are of all its cores.",
    '',
    table(
      [
        'worker processes',
        'seconds',
        'files/s',
        'MB/s',
        'speedup vs 1',
        'CPU s per process',
        'CPU s per MiB',
        'machine busy',
        'I/O wait',
        'peak RSS per process',
        'start-up',
      ],
      rounds.map((s) => [
        fmt(s.workers),
        sec(s.seconds),
        fmt(s.filesPerSecond, 1),
        `**${fmt(s.mbps)}**`,
        times(ratio(s.mbps, one.mbps)),
        s.workerCpuSeconds.map((c) => fmt(c, 2)).join(' / '),
        fmt(s.cpuSecondsPerMiB, 4),
        pct(s.machineBusy),
        pct(s.ioWait),
        `${s.workerMiB.map((v) => fmt(v)).join(' / ')} MiB`,
        sec(s.bootSeconds),
      ]),
    ),
    '',
  ];
  const charts = {};
  if (one) {
    const best = rounds.reduce((top, s) => (s.mbps > top.mbps ? s : top), one);
    const last = rounds.at(-1);
    const perCore = one.mbps / f.oneCores;
    md.push(
      '![Scale-out](benchmarks-scale-out.svg)',
      '',
      `- **Where it flattens**: one process (${fmt(so.concurrency)} jobs at a time, each hashing on threads beside the main thread) already kept ${fmt(f.oneCores, 2)} of the machine's ${m.cores} cores busy and the machine ${pct(one.machineBusy)} busy;` +
        ` at its ${fmt(one.cpuSecondsPerMiB, 4)} CPU s per MiB, ${m.cores} cores allow at most ${mbs(f.cpuBound)} however many processes share them.` +
        ` ${best.workers} processes reached ${mbs(best.mbps)} (${times(ratio(best.mbps, one.mbps))} of one, ${pct(ratio(best.mbps, f.cpuBound))} of that bound);` +
        ` ${last.workers} processes add jobs, not cores: their CPU s per MiB was ${fmt(last.cpuSecondsPerMiB, 4)} (${times(ratio(last.cpuSecondsPerMiB, one.cpuSecondsPerMiB))} of one process's:` +
        ` more threads than cores take turns, each process collects its own garbage), so past the core count the curve ${last.mbps < best.mbps * 0.95 ? 'drops' : 'stays flat'}.`,
      `- **The store's fsync**: every object is fsynced with its directory before its row is \`stored\`; cores sat idle waiting on the disk for ${pct(one.ioWait)} of the time` +
        ` with 1 process and ${pct(last.ioWait)} with ${last.workers}` +
        (Math.max(...rounds.map((s) => s.ioWait)) < 0.1
          ? ': small next to the CPU, so not what limits the curve here.'
          : ': more jobs in flight fill those waits with work, which is part of what a second process gains; past that the CPU is the limit.'),
      `- **Operator rule**: a worker process moves about **${mbs(perCore)} per core** it gets (${mbs(one.mbps)} on ${fmt(f.oneCores, 2)} cores) of ${fmt(so.mib)} MiB files,` +
        ` and with concurrency ${fmt(so.concurrency)} it uses up to ${fmt(f.oneCores, 1)} cores: give a pod about that as its CPU request and limit, and scale by pods on nodes with free cores;` +
        ` pods beyond (node cores / ${fmt(f.oneCores, 1)}) per node only queue for the same cores (${last.workers} processes on ${m.cores} cores here).`,
      '',
    );
    charts['benchmarks-scale-out.svg'] = lineChart({
      title: `Scale-out: ${so.files} x ${so.mib} MiB files by worker processes (${m.cores} cores)`,
      unit: 'MB/s',
      xs: rounds.map((s) => `${s.workers} process${s.workers > 1 ? 'es' : ''}`),
      series: [
        { label: 'measured', values: rounds.map((s) => s.mbps) },
        { label: 'linear from 1 process', values: rounds.map((s) => one.mbps * s.workers) },
      ],
      markers: has(f.cpuBound) ? [{ value: f.cpuBound, label: `CPU bound of ${m.cores} cores` }] : [],
    });
  }

  md.push(
    `## 11. A burst of ${fmt(b?.files)} files: queue wait, and sizing KEDA's listLength`,
    '',
    `${fmt(b?.files)} files of ${fmt(b?.kib)} KiB (a document or photo: a realistic small upload), each its own POST, ${fmt(b?.inFlight)} requests in flight`,
    `as fast as the client can, to a gateway with ${fmt(b?.workers)} worker processes (concurrency ${fmt(b?.concurrency)}) already running, local store.`,
    "Queue wait per file is its row's `created_at` (inserted `queued` just before its job is added) to",
    "`processing_started_at` (the worker's claim); BullMQ's own `job.timestamp` to `job.processedOn` is the",
    `cross-check. The wait list (\`LLEN <prefix>:bull:crypto:wait\`, what KEDA's trigger reads) and the active list`,
    `were sampled every 100 ms (${fmt(b?.samples?.length)} samples).`,
    '',
    table(
      ['', 'p50', 'p95', 'max'],
      [
        [
          'queue wait: created_at -> processing_started_at',
          ms(b?.waitP50Ms),
          `**${ms(b?.waitP95Ms)}**`,
          ms(b?.waitMaxMs),
        ],
        [
          `BullMQ: job added -> processedOn (${fmt(b?.bullJobs)} jobs)`,
          ms(b?.bullWaitP50Ms),
          ms(b?.bullWaitP95Ms),
          ms(b?.bullWaitMaxMs),
        ],
      ],
    ),
    '',
    table(
      [
        'uploads accepted',
        'drain rate (first claim to last stored)',
        'longest wait list',
        'wait list empty at',
        'last stored at',
        'CPU ms per file gateway / workers',
        'machine busy',
      ],
      [
        [
          `${sec(b?.uploadSeconds)} (${fmt(b?.uploadsPerSecond)}/s)`,
          `${fmt(b?.drainFilesPerSecond)} files/s (${fmt(f.perProcess)} per process)`,
          `**${fmt(b?.maxWaiting)}** at ${sec(b?.maxWaitingAtSeconds)} (active at most ${fmt(b?.maxActive)})`,
          sec(b?.drainedAtSeconds),
          sec(b?.storedSeconds),
          `${ms(b?.gatewayCpuMsPerFile)} / ${ms(b?.workerCpuMsPerFile)}`,
          pct(b?.machineBusy),
        ],
      ],
    ),
    '',
  );
  if (b?.samples?.length) {
    // At most ~24 points on the chart: the largest sample of each slice of time.
    const step = Math.max(1, Math.ceil(b.samples.length / 24));
    const slices = [];
    for (let i = 0; i < b.samples.length; i += step) slices.push(b.samples.slice(i, i + step));
    md.push('![Burst](benchmarks-burst.svg)', '');
    charts['benchmarks-burst.svg'] = lineChart({
      title: `Burst of ${b.files} x ${b.kib} KiB: the crypto queue over time (seconds)`,
      unit: 'jobs',
      xs: slices.map((slice) => fmt(slice[0][0] / 1000, 1)),
      series: [
        { label: 'waiting (KEDA reads)', values: slices.map((slice) => Math.max(...slice.map((x) => x[1]))) },
        { label: 'active', values: slices.map((slice) => Math.max(...slice.map((x) => x[2]))) },
      ],
      markers: b.keda
        ? [{ value: b.keda.listLength * b.workers, label: `listLength x ${b.workers} workers` }]
        : [],
    });
  }
  if (b?.keda && has(f.perProcess)) {
    const { listLength, pollingInterval, maxReplicaCount, maxFileMiB } = b.keda;
    const wanted = Math.min(maxReplicaCount, Math.ceil(b.maxWaiting / listLength));
    const sizes = [
      [`${b.kib} KiB (the burst)`, f.burstMb],
      ...(so ? [[`${so.mib} MiB (the curve)`, (so.mib * 1048576) / 1e6]] : []),
      ...(has(maxFileMiB)
        ? [[`${maxFileMiB} MiB (the ConfigMap's MAX_FILE_SIZE)`, (maxFileMiB * 1048576) / 1e6]]
        : []),
    ];
    md.push(
      `**What it means for KEDA** (k8s/base/crypto-worker-scaledobject.yaml: wait-list \`listLength: "${listLength}"\`, \`pollingInterval: ${pollingInterval}\`,`,
      `up to ${maxReplicaCount} replicas). KEDA asks for ceil(waiting / listLength) workers: at this burst's peak of ${fmt(b.maxWaiting)} waiting jobs that is ${fmt(wanted)} (at most ${maxReplicaCount}).`,
      `A new pod takes jobs at the latest one metrics read plus its start-up after the queue grew: ${sec(f.reactSeconds)} here`,
      `(the HPA that KEDA drives reads the metric every ${HPA_SYNC_SECONDS} s by default, pollingInterval only governs scaling from zero;`,
      `${sec(one?.bootSeconds)} for a worker process to start; add your cluster's scheduling and image pull).`,
      `The ${fmt(b.workers)} running workers emptied the wait list ${sec(b.drainedAtSeconds)} after the first upload, so ` +
        (b.drainedAtSeconds < f.reactSeconds
          ? 'no added pod would have taken a job of this burst.'
          : `pods added after ${sec(f.reactSeconds)} would have shared the rest.`),
      `With W workers draining X files/s each, a burst of B files is drained about B / (W X) after it arrives`,
      `(${fmt(b.files)} / (${fmt(b.workers)} x ${fmt(f.perProcess)}) = ${sec(b.files / (b.workers * f.perProcess))} predicted; the last row here was stored at ${sec(b.storedSeconds)}), and its last file waits`,
      `that long less its own arrival (${sec(b.waitMaxMs / 1000)} measured; the uploads took ${sec(b.uploadSeconds)}). Scale-out shortens that only`,
      `beyond the reaction time. With listLength L, the wait at the scale-out threshold is L / X per file.`,
      `X here is what ${fmt(b.workers)} processes reached while the gateway took the uploads on the same ${m.cores} cores (machine ${pct(b.machineBusy)} busy; the`,
      `workers' own CPU was ${ms(b.workerCpuMsPerFile)} per file), so it is a floor for workers on cores of their own.`,
      `A worker's X depends on the file size: its fixed cost per file (the burst: ${ms(f.secondsPerFile(0) * 1000)}) plus the bytes`,
      `at ${mbs(one?.mbps)} per process (section 10). A listLength of X times the reaction time scales out only for a backlog`,
      'the running workers cannot clear before a new pod could help:',
      '',
      table(
        [
          'typical file',
          'seconds per file per worker',
          `files a worker clears in ${sec(f.reactSeconds)}`,
          `backlog at listLength ${listLength}`,
        ],
        sizes.map(([label, mb]) => {
          const t = f.secondsPerFile(mb);
          return [label, sec(t), fmt(f.reactSeconds / t, t < 1 ? 0 : 1), sec(listLength * t)];
        }),
      ),
      '',
      `The wait list counts files, not bytes, so one listLength cannot fit both ends: pick it for the sizes your users`,
      `upload (docs/deployment.md, "Sizing the workers and listLength").`,
      '',
    );
  }
  return { md, charts };
}

/**
 * Where the pass's CPU went by thread (/proc, median of the runs), and how busy the machine was: with
 * other work on the cores, the wall time says little and these CPU seconds are what compares.
 */
function threadSentence(threads, cores) {
  if (!threads || !has(threads.main)) return '';
  const hash = threads.hash.map((s) => `${fmt(s, 2)} s`).join(' and ');
  return (
    ` By thread: main ${fmt(threads.main, 2)} s (staging decryption, encryption, hand-offs), hash threads ${hash || 'none'}, ` +
    `libuv ${fmt(threads.libuv, 2)} s (file reads), V8 helpers ${fmt(threads.v8, 2)} s (garbage collection); ` +
    `the work can keep ${cores} cores busy only when no thread needs more than 1/${cores} of the total.`
  );
}

/** Plain statements derived from the numbers of this run: what limits each path. */
function analysis(r, { ceiling, wpRatio, ingestRatio, plainRatio }) {
  const out = ['## Reading the numbers', ''];
  const wp = r.workerPass?.discard;
  const m = r.machine;
  const size = r.config.sizeMiB;
  if (has(wpRatio)) {
    const profiles = r.profile?.profiles ?? [];
    const categoryMs = (label) =>
      profiles.reduce((sum, p) => sum + (p.categories.find((c) => c.label.startsWith(label))?.ms ?? 0), 0);
    const megabytes = (size * 1048576) / 1e6;
    // CPU seconds the four primitives need at openssl's speed, and what that allows on every core.
    const primitiveSeconds =
      megabytes / r.ceiling.gcmDecrypt +
      megabytes / r.ceiling.gcm +
      megabytes / r.ceiling.sha1 +
      megabytes / r.ceiling.sha256;
    // What the cores deliver together, measured (one core's speed times the core count where not).
    const scale = has(r.ceiling.gcmAllCores) ? r.ceiling.gcmAllCores / r.ceiling.gcm : m.cores;
    const bound = megabytes / (primitiveSeconds / scale);
    out.push(
      `- **Worker pass**: ${mbs(wp.mbps)} is ${times(wpRatio)} the one-core ceiling of ${mbs(ceiling)}. SHA-1 and SHA-256 run on ` +
        `${profiles.filter((p) => p.categories.some((c) => c.label.startsWith('SHA-1') && c.ms > 0)).length} hash threads that read the very buffers the main thread encrypts (no copy), so the pass used ` +
        `${fmt(wp.cpuSeconds, 2)} s of CPU in ${fmt(wp.seconds, 2)} s (${fmt(wp.cpuSeconds / wp.seconds, 1)} cores). In the profile the hashes took ` +
        `${ms(categoryMs('SHA-1'))} and AES-GCM ${ms(categoryMs('AES'))}. The four primitives alone need ${fmt(primitiveSeconds, 2)} s of CPU ` +
        `for ${size} MiB at openssl's speed, and this machine's ${m.cores} cores together deliver ${times(scale)} what one does (openssl speed -multi), ` +
        `so they cannot pass ${mbs(bound)} (${times(bound / ceiling)} the ceiling) whatever the code; ` +
        'the rest goes to reading the file, handing buffers to the hash threads and garbage collection of the cipher output' +
        (wpRatio >= 1.2 ? '.' : ', and the profile above shows how much each took.') +
        threadSentence(wp.threads, m.cores),
    );
  }
  const isolated = r.workerPass?.local;
  // The upload with its follower held back: a pipelined pass is mostly done before the worker claims the row.
  const liveRun = r.e2eLocalUnpipelined ?? r.e2eLocal;
  if (has(liveRun?.workerSeconds) && has(isolated?.seconds)) {
    const slower = liveRun.workerSeconds / isolated.seconds;
    out.push(
      `- **The live worker vs the bare pass**: inside the real worker process (pipelining off) the same pass into the same local store took ` +
        `${sec(liveRun.workerSeconds)} (${mbs(liveRun.workerMbps)}, ${fmt(liveRun.workerCpuSeconds, 2)} s CPU) against ${sec(isolated.seconds)} ` +
        `(${fmt(isolated.cpuSeconds, 2)} s CPU) in a bare process: ${times(slower)}` +
        (slower > 1.25
          ? '. The stream code is the same, so the difference lives in the long-running process around it (garbage collection of a bigger heap, BullMQ and Redis work, progress events, logging).'
          : ', so the job machinery adds little.'),
    );
  }
  if (has(ingestRatio)) {
    out.push(
      `- **Ingest**: the gateway takes the upload at ${times(ingestRatio)} the rate of a bare Node server writing the same body to disk` +
        (ingestRatio >= 0.6
          ? ', encrypting every record into staging on the way.'
          : ': multipart parsing (busboy), staging encryption, the middleware stack and the database writes cost more than the target allows.') +
        (has(r.e2eLocalAfterIdle?.gatewayCpuSeconds) && has(r.e2eLocalUnpipelined?.gatewayCpuSeconds)
          ? ` After 15 s without requests the same upload took ${sec(r.e2eLocalAfterIdle.ingestSeconds)} and ${fmt(r.e2eLocalAfterIdle.gatewayCpuSeconds, 2)} gateway CPU-s ` +
            `(${fmt(r.e2eLocalUnpipelined.gatewayCpuSeconds, 2)} s in the runs before it); without the old-generation floor of scripts/runtime-env.mjs, V8 ran 16-25 full ` +
            'collections during such an upload and the gateway used 1.8-2.0 s.'
          : ''),
    );
  }
  const on = r.e2eLocal;
  const off = r.e2eLocalUnpipelined;
  if (has(on?.afterLastByteSeconds) && has(off?.afterLastByteSeconds)) {
    // 0.8x of the ingest rate alone: the whole file stored within this long of the first byte.
    const wanted = off.ingestSeconds / 0.8;
    const first = r.e2eLocalFirst;
    out.push(
      `- **Pipelining** (local store): ${sec(on.afterLastByteSeconds)} from the last byte to \`stored\` against ${sec(off.afterLastByteSeconds)} with the follower held back, ` +
        `and ${sec(on.seconds)} end to end against ${sec(off.seconds)}. The upload itself takes ${sec(on.ingestSeconds)} instead of ${sec(off.ingestSeconds)}: ` +
        `the follower hashes and encrypts on the same ${m.cores} cores the gateway ingests on. The gateway, the worker and this client together spent ` +
        `${fmt(uploadCpu(on), 2)} s of CPU on the pipelined upload (${fmt(on.gatewayCpuSeconds, 2)} + ${fmt(on.workerCpuSeconds, 2)} + ${fmt(on.clientCpuSeconds, 2)}), ` +
        `which ${m.cores} cores cannot do in less than ${sec(uploadCpu(on) / m.cores)} even with every core busy all the time. ` +
        `0.8x of the ingest alone means ${sec(wanted)} end to end` +
        (uploadCpu(on) / m.cores > wanted
          ? ', below that bound: on this machine no overlap can reach the target, only less CPU per byte can. '
          : ', within that bound: the rest is how well the processes overlap. ') +
        (first
          ? `The first 512 MiB upload of the processes took ${sec(first.seconds)} (upload ${sec(first.ingestSeconds)}; ` +
            `CPU ${fmt(uploadCpu(first), 2)} s against ${fmt(uploadCpu(on), 2)} s): their heaps and buffers grow for the first time, into memory this VM has not used lately (section 1); ` +
            'a scratch file written and deleted just before it (tried) did not make it faster, so it is not the page cache alone. '
          : '') +
        'Where the gateway and the worker have cores of their own (their own pods), the pass overlaps the upload and end to end approaches the ingest alone.',
    );
  }
  if (has(plainRatio)) {
    const budget = r.plainS3.seconds / 0.85;
    out.push(
      `- **S3**: s3rver takes a plain multipart upload of the file in ${sec(r.plainS3.seconds)} (${mbs(r.plainS3.mbps)}); TESS end to end reaches ${times(plainRatio)} of that rate. ` +
        `With pipelining the follower sends parts while the upload arrives (${sec(r.e2eS3?.ingestSeconds)} until the 202), yet it falls behind: ` +
        `${sec(r.e2eS3?.afterLastByteSeconds)} are left after the last byte. 0.85x allows ${sec(budget)} in all, ${sec(budget - r.plainS3.seconds)} more than the plain upload itself, ` +
        'for the gateway, the worker and s3rver sharing the same cores. ' +
        (has(r.e2eS3?.clientCpuSeconds) && has(r.e2eS3?.endpointCpuSeconds)
          ? `Together they and this client spent ${fmt(uploadCpu(r.e2eS3), 2)} s of CPU on the TESS upload (gateway ${fmt(r.e2eS3.gatewayCpuSeconds, 2)}, ` +
            `worker ${fmt(r.e2eS3.workerCpuSeconds, 2)}, client ${fmt(r.e2eS3.clientCpuSeconds, 2)}, s3rver ${fmt(r.e2eS3.endpointCpuSeconds, 2)}), ` +
            `which ${m.cores} cores cannot do in less than ${sec(uploadCpu(r.e2eS3) / m.cores)}` +
            (uploadCpu(r.e2eS3) / m.cores > budget ? ', more than the budget. ' : '. ')
          : '') +
        `s3rver is one JavaScript process: during the plain upload it used ${fmt(r.plainS3.endpointCpuSeconds, 2)} s of CPU in ${sec(r.plainS3.seconds)} ` +
        `(${fmt((r.plainS3.endpointCpuSeconds / r.plainS3.seconds) * 100)} % of one core), so it sets the pace, and every CPU second the worker spends ` +
        `(${fmt(r.e2eS3?.workerCpuSeconds, 2)} s: hashing, encryption, and the SHA-256 of every part that SigV4 signs, computed on the hash threads) is taken from the same ${m.cores} cores. ` +
        'Traced once (2026-12-05, worker and s3rver timings per step, the tracing not kept): the follow job started 35-40 ms after ' +
        'the request and sent its first part within 150 ms, then released about 90 MB/s while the gateway staged 125 MB/s, ' +
        'so it was 138 MB behind when the last byte arrived; after it, catching up took 0.7-0.8 s, the hand-off from the seal ' +
        "to the acceptance 4-13 ms, the last parts 0.1-0.2 s, s3rver's own CompleteMultipartUpload 2.0-2.1 s (it joins the " +
        'part files into one and computes their MD5, a cost that grows with the bytes, which the plain upload pays too) and ' +
        "the commit 6-10 ms. Complete alone is over the 1.5 s target on s3rver, so no change on TESS's side can meet it here.",
    );
  }
  if (r.smallFiles) {
    const sf = r.smallFiles;
    const batched = r.smallFilesBatched;
    out.push(
      `- **Small files**: ${fmt(sf.filesPerSecond)} files/s with ${sf.workers} worker processes, while the gateway accepted ${fmt(sf.uploadsPerSecond)} uploads/s; ` +
        'per file the cost is fixed (request, authentication, row, queue job, key, staging and object writes with their fsyncs, row update, audit) rather than bytes. ' +
        `One file per request cost ${ms(smallCpu(sf))} of CPU (gateway ${ms(sf.gatewayCpuMsPerFile)}, workers ${ms(sf.workerCpuMsPerFile)}, ` +
        `PostgreSQL ${ms(sf.postgresCpuMsPerFile)}, Redis ${ms(sf.redisCpuMsPerFile)}), so ${m.cores} cores cannot exceed about ` +
        `${fmt((m.cores * 1000) / (smallCpu(sf) + (sf.clientCpuMsPerFile ?? 0)))} files/s with this client on them; 200 files/s needs all of it under ${ms((m.cores * 1000) / 200)}. ` +
        (batched
          ? `${fmt(batched.perRequest)} files per request cost ${ms(smallCpu(batched))} (gateway ${ms(batched.gatewayCpuMsPerFile)}): the request, its authentication, quota and name queries, its row insert and its audit commit are shared. `
          : '') +
        "The workers' share is per file whatever the request: the job's queue scripts, its lock session, the row claim and the stored commit (with its `file.stored` event), " +
        'the staging file opened and authenticated, and the object written, fsynced and renamed with its directory fsynced. ' +
        'When intake outpaces the workers the queue grows, and the latency from acceptance to `stored` grows with it.',
    );
  }
  const workerScaling = r.e2eScaling ?? [];
  if (workerScaling.length > 1) {
    const first = workerScaling[0];
    const last = workerScaling.at(-1);
    out.push(
      `- **Worker memory**: the worker process peaks at ${mib(first.workerMiB)} for a ${first.mib} MiB file and ${mib(last.workerMiB)} for ` +
        `${last.mib} MiB, while the bare pass grows by less than 30 MiB: its read buffers are fixed (4 x 2 MiB per job), and what grows ` +
        'is cipher output and store batches waiting for V8, which frees them when its external-memory pressure (about 64 MiB) or a ' +
        "young-generation collection comes around. V8's young generation is capped at 2 x 16 MiB (uncapped it grew the peak by 20-65 MiB); " +
        'smaller caps cost up to 1.8 CPU seconds per 512 MiB S3 upload in garbage collection, which s3rver needs more (scripts/runtime-env.mjs).',
    );
  }
  const gatewayIdle = r.idle?.local?.gatewayMiB;
  if (has(gatewayIdle)) {
    const gatewayApp = r.footprint?.find((f) => f.label.startsWith('gateway'))?.rssMiB;
    const uploadPeak = Math.max(r.e2eLocal?.gatewayMiB ?? 0, r.e2eS3?.gatewayMiB ?? 0);
    const downloadPeak = Math.max(r.download?.local?.gatewayMiB ?? 0, r.download?.s3?.gatewayMiB ?? 0);
    out.push(
      `- **Gateway memory**: the gateway sits at ${mib(gatewayIdle)} before any upload (loading its code alone costs ${mib(gatewayApp)}, ` +
        'see the memory floor: NestJS, TypeORM, Socket.IO, BullMQ; the AWS SDK, SimpleWebAuthn, otplib, qrcode, bull-board, pino-pretty and the OpenAPI document ' +
        "load on first use, V8's young generation is capped at 2 x 8 MiB and its old generation has an 80 MiB floor under its collection limit, scripts/runtime-env.mjs). A 512 MiB upload peaks at " +
        `${mib(uploadPeak)} and a download at ${mib(downloadPeak)}; the growth is the same whatever the file size (section 7). ` +
        "An upload's socket reads are off-heap buffers that V8 frees only when it collects their small JS objects, and it counts " +
        'them only in 64 MiB steps, each answered with a full mark-compact; the staging writer therefore asks for a ' +
        'young-generation collection every 16 MiB it stages (libs/common/src/util/young-garbage.ts: a 512 MiB multipart upload ' +
        "peaked about 35 MiB lower and used about 40 % less gateway CPU, bench/gateway-memory.mjs). What is left above idle is V8's " +
        'heap growing under load and freed blocks kept in the malloc arenas; a download frees its ciphertext and plaintext buffers ' +
        'as it goes.',
    );
  }
  return out;
}

// `node bench/report.mjs`: redraws docs/benchmarks.md and the charts from the results embedded in it.
if (import.meta.url === `file://${process.argv[1]}`) {
  const docs = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs');
  const text = await readFile(join(docs, 'benchmarks.md'), 'utf8');
  const json = /<!-- bench-results (.*) -->/.exec(text)?.[1];
  if (!json) {
    console.error('docs/benchmarks.md holds no results: run `npm run bench`.');
    process.exit(1);
  }
  const { summary } = await writeReport(JSON.parse(json), docs);
  console.log(summary);
}
