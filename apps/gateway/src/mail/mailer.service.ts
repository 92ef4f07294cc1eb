import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Transporter } from 'nodemailer';
import { lazyModule, TESS_CONFIG, type TessConfig } from '#common';

/** Loaded only when SMTP_URL configures mail: without it nodemailer would hold about 1 MiB of heap unused. */
const nodemailer = lazyModule<typeof import('nodemailer')>('nodemailer');

/** A plain-text message to one recipient. */
export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
}

/**
 * Outgoing mail over SMTP (nodemailer), configured by `SMTP_URL`; without it `enabled` is false and
 * nothing can be sent. nodemailer's own logger stays off: it would print whole messages, and a password
 * reset message carries a credential.
 */
@Injectable()
export class MailerService implements OnApplicationShutdown {
  private readonly transport: Transporter | null;
  private readonly from: string;

  constructor(@Inject(TESS_CONFIG) config: TessConfig) {
    this.from = config.mail.from;
    this.transport = config.mail.smtpUrl
      ? nodemailer().createTransport({
          url: config.mail.smtpUrl,
          logger: false,
          debug: false,
          connectionTimeout: 10_000,
          greetingTimeout: 10_000,
          socketTimeout: 30_000,
        })
      : null;
  }

  get enabled(): boolean {
    return this.transport !== null;
  }

  /** Sends the message; rejects with the SMTP error (its message names no part of the body). */
  async send(mail: OutgoingMail): Promise<void> {
    if (!this.transport) throw new Error('No SMTP_URL is configured: TESS cannot send mail.');
    await this.transport.sendMail({ from: this.from, to: mail.to, subject: mail.subject, text: mail.text });
  }

  onApplicationShutdown(): void {
    this.transport?.close();
  }
}
