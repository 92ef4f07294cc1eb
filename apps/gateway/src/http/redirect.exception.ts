import { HttpException, HttpStatus } from '@nestjs/common';

/** Thrown to send the browser elsewhere (303); the exception filter turns it into a redirect. */
export class RedirectException extends HttpException {
  constructor(readonly location: string) {
    super('Redirect', HttpStatus.SEE_OTHER);
  }
}
