import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** A message the loopback SMTP server accepted, as its envelope said and as mailparser read it. */
export interface CapturedMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  /** The message as it came over the wire. */
  raw: string;
  contentType: string;
}

export interface SmtpCapture {
  /** `smtp://127.0.0.1:<port>`, for SMTP_URL. */
  url: string;
  messages: CapturedMail[];
  /** Resolves with the first message (already received or still to come) to `to`. */
  waitFor(to: string, timeoutMs?: number): Promise<CapturedMail>;
  /** Each message is held this long before the server accepts it (a slow mail server). */
  delayMs: number;
  /** When set, every message is captured but then refused with `550 <reject>`. */
  reject: string | null;
  close(): Promise<void>;
}

/**
 * A real SMTP server (the `smtp-server` package) on loopback that keeps every message it is sent: no
 * TLS and no authentication, as a local relay would be.
 */
export async function startSmtpCapture(): Promise<SmtpCapture> {
  const messages: CapturedMail[] = [];
  const waiters: Array<{ to: string; resolve: (m: CapturedMail) => void }> = [];
  const capture: SmtpCapture = {
    url: '',
    messages,
    delayMs: 0,
    reject: null,
    waitFor(to, timeoutMs = 10_000) {
      const found = messages.find((m) => m.to.includes(to));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`No mail to ${to} within ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({
          to,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const parsed = await simpleParser(raw);
        const mail: CapturedMail = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: parsed.subject ?? '',
          text: parsed.text ?? '',
          raw,
          contentType: parsed.headers.get('content-type')
            ? String((parsed.headers.get('content-type') as { value: string }).value)
            : '',
        };
        setTimeout(() => {
          messages.push(mail);
          for (const waiter of waiters.splice(0)) {
            if (mail.to.includes(waiter.to)) waiter.resolve(mail);
            else waiters.push(waiter);
          }
          if (capture.reject === null) return callback();
          callback(Object.assign(new Error(capture.reject), { responseCode: 550 }));
        }, capture.delayMs);
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.on('error', () => undefined);
  capture.url = `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  return capture;
}
