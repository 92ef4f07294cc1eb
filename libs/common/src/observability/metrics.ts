import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

const MiB = 1024 * 1024;

/**
 * Prometheus metrics of one TESS process. Every process has its own registry (tests run several apps
 * in one process); names are prefixed `tess_`.
 */
export class TessMetrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly uploadFileBytes: Histogram;
  readonly jobDuration: Histogram<'outcome'>;
  readonly bytes: Counter<'stage'>;
  readonly jobFailures: Counter<'reason'>;
  readonly scanResults: Counter<'result'>;
  readonly queueJobs: Gauge<'queue' | 'state'>;
  readonly reconciledJobs: Counter<'outcome'>;

  /** `queueCounts`: jobs by state of each queue (queue name -> state -> count), read at every scrape. */
  constructor(
    app: 'gateway' | 'crypto-worker',
    queueCounts?: () => Promise<Record<string, Record<string, number>>>,
  ) {
    this.registry.setDefaultLabels({ app });
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.httpDuration = new Histogram({
      name: 'tess_http_request_duration_seconds',
      help: 'HTTP request latency by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
      registers,
    });
    this.uploadFileBytes = new Histogram({
      name: 'tess_upload_file_bytes',
      help: 'Sizes of accepted uploaded files',
      buckets: [0, 16 * 1024, 256 * 1024, MiB, 8 * MiB, 64 * MiB, 256 * MiB, 1024 * MiB],
      registers,
    });
    this.jobDuration = new Histogram({
      name: 'tess_job_duration_seconds',
      help: 'encrypt-file job duration by outcome',
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600],
      registers,
    });
    this.bytes = new Counter({
      name: 'tess_bytes_total',
      help: 'Bytes through the pipeline by stage: hashed, encrypted (ciphertext) and uploaded',
      labelNames: ['stage'],
      registers,
    });
    this.jobFailures = new Counter({
      name: 'tess_job_failures_total',
      help: 'Failed job attempts by reason',
      labelNames: ['reason'],
      registers,
    });
    this.reconciledJobs = new Counter({
      name: 'tess_reconciled_jobs_total',
      help: 'Files whose BullMQ job was lost, by what the reconciler did: requeued, or failed (staged data gone)',
      labelNames: ['outcome'],
      registers,
    });
    this.scanResults = new Counter({
      name: 'tess_scan_results_total',
      help: 'Malware scan verdicts: clean, infected, too-large (over clamd StreamMaxLength), error (no verdict)',
      labelNames: ['result'],
      registers,
    });
    this.queueJobs = new Gauge({
      name: 'tess_queue_jobs',
      help: 'Jobs by queue (crypto: sealed uploads and maintenance; follow: uploads still arriving) and state',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        if (!queueCounts) return;
        try {
          for (const [queue, counts] of Object.entries(await queueCounts())) {
            for (const [state, count] of Object.entries(counts)) this.set({ queue, state }, count);
          }
        } catch {
          // Redis down: readiness reports it; keep the last values.
        }
      },
    });
  }
}
