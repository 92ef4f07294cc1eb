/** The client went away mid-request (e.g. mid-upload): nothing to answer, everything to clean up. */
export class ClientAbortedError extends Error {
  constructor() {
    super('The client closed the connection before the upload finished');
    this.name = 'ClientAbortedError';
  }
}
