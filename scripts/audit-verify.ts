import 'reflect-metadata';
import {
  type AuditVerifyReport,
  auditKeyringFromConfig,
  createDataSource,
  keyProviderFromConfig,
  loadConfig,
  objectStoreFromConfig,
  readAuditAnchor,
  type TessConfig,
  verifyAuditChains,
} from '#common';

/**
 * `npm run audit:verify [-- --chain user:<id>] [--no-anchor]`: walks every audit chain (docs/security.md
 * item 33) and reports each chain's first broken link (edited, deleted, reordered, inserted or truncated
 * events) with the event's id and time, checking each chain against the latest signed anchor in the
 * object store too (a tail cut together with its head row); exit code 1 on any break, 0 when every chain
 * verifies. Read-only; needs the database, the object store and the master key (the links are HMACs
 * under a key derived from it).
 */
export async function auditVerify(
  config: TessConfig,
  options: { chain?: string; anchor?: boolean } = {},
): Promise<AuditVerifyReport & { anchoredAt: string | null }> {
  const keys = keyProviderFromConfig(config);
  const keyring = auditKeyringFromConfig(config, keys);
  const store = objectStoreFromConfig(config);
  const dataSource = createDataSource(config);
  await dataSource.initialize();
  try {
    const anchor = options.anchor === false ? null : await readAuditAnchor(store, keyring);
    const report = await verifyAuditChains(dataSource, keyring, {
      only: options.chain,
      anchors: anchor?.checkpoints,
    });
    return { ...report, anchoredAt: anchor?.at ?? null };
  } finally {
    await dataSource.destroy();
    await store.close();
    await keyring.close();
    await keys.close();
  }
}

/** The report as lines for a terminal. */
export function describeReport(
  report: AuditVerifyReport & { anchoredAt: string | null },
  seconds: number,
): string[] {
  const lines = report.breaks.map(
    (b) => `BROKEN ${b.chain}: ${b.kind}: ${b.message}${b.eventId ? ` [event ${b.eventId}]` : ''}`,
  );
  lines.push(
    `${report.ok ? 'OK' : 'FAILED'}: ${report.events} events in ${report.chains.length} chain(s) checked in ${seconds.toFixed(2)} s` +
      (report.legacyEvents
        ? `; ${report.legacyEvents} events from before the chain (counted, not linked)`
        : '') +
      (report.anchoredAt
        ? `; checked against the anchor of ${report.anchoredAt}`
        : '; no anchor in the object store yet') +
      (report.ok ? '' : `; ${report.breaks.length} broken chain(s)`),
  );
  return lines;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv.indexOf('--chain');
  const chain = at > 0 ? process.argv[at + 1] : undefined;
  const started = performance.now();
  auditVerify(loadConfig(), { chain, anchor: !process.argv.includes('--no-anchor') }).then(
    (report) => {
      for (const line of describeReport(report, (performance.now() - started) / 1000)) console.log(line);
      process.exit(report.ok ? 0 : 1);
    },
    (error: unknown) => {
      console.error(`audit:verify could not run: ${(error as Error).message}`);
      process.exit(2);
    },
  );
}
