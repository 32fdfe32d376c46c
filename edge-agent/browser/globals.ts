// Injected by scripts/build-browser-agent.mjs: the shared modules' free references to these Node.js globals
// become imports of these: Buffer from the `buffer` package, and setImmediate as a macrotask (a zero-delay
// timeout), which is all the transports ask of it: run after the I/O already queued.
export { Buffer } from 'buffer';

export function setImmediate<A extends unknown[]>(callback: (...args: A) => void, ...args: A): ReturnType<typeof setTimeout> {
  return setTimeout(() => callback(...args), 0);
}
