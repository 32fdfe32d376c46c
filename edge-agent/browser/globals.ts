// Injected by scripts/build-browser-agent.mjs: the shared modules' free references to these Node.js globals
// become imports of these: Buffer from the `buffer` package, and setImmediate as a macrotask (a zero-delay
// timeout), which is all the transports ask of it: run after the I/O already queued.
import { Buffer } from 'buffer';

// The `buffer` package predates Node's 'base64url' encoding, which the log key's JWK form uses
// (shared/log/log-signature.ts): encoding to it is base64 with the URL alphabet and no padding.
const toString = Buffer.prototype.toString as (this: Buffer, encoding?: string, start?: number, end?: number) => string;
Buffer.prototype.toString = function (this: Buffer, encoding?: string, start?: number, end?: number): string {
  if (encoding !== 'base64url') return toString.call(this, encoding, start, end);
  return toString.call(this, 'base64', start, end).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
} as typeof Buffer.prototype.toString;

export { Buffer };

export function setImmediate<A extends unknown[]>(callback: (...args: A) => void, ...args: A): ReturnType<typeof setTimeout> {
  return setTimeout(() => callback(...args), 0);
}
