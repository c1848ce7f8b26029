/** The local runtime's start-up failures: messages meant for the user as they are (no stack trace). */

export class RuntimeStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RuntimeStartError';
  }
}

export class PortInUseError extends RuntimeStartError {
  constructor(port: number) {
    super(`port ${port} on 127.0.0.1 is already in use (is another information center running?); choose another with --port, or --port 0 for a free one`);
    this.name = 'PortInUseError';
  }
}
