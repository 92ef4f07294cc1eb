import { Injectable } from '@nestjs/common';

/**
 * The time share links are judged by (expiry, download reservations). One provider, so a test can move
 * it (`vi.spyOn(app.get(Clock), 'now')`) and see a link expire without waiting for days.
 */
@Injectable()
export class Clock {
  now(): Date {
    return new Date();
  }
}
