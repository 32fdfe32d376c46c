// The browser bundle's stand-in for Node.js built-ins that the agent's modules import but a page never reaches
// (files, sockets, child processes, worker threads; gRPC's HTTP/2): scripts/build-browser-agent.mjs maps them
// here. Every function throws, naming itself, when called. A few pure helpers that modules call while loading
// (path joins, fileURLToPath on their own URL, createRequire) return values instead, so loading succeeds, and
// existsSync/readFileSync see the few package files the build script embeds.
'use strict';
function unavailable(name) {
  return function () {
    throw new Error(`${name} is not available in the browser agent`);
  };
}
const names = `ChildProcess FileHandle IncomingMessage KeyObject SecureContext Server ServerResponse Socket Worker
  checkServerIdentity closeSync connect copyFile createCipheriv createDecipheriv createInterface createPrivateKey
  createPublicKey createSecureContext createServer diffieHellman existsSync fstatSync generateKeyPairSync hkdfSync
  mkdir mkdirSync mkdtemp mkdtempSync open openSync readFile readFileSync readSync readdir rename rm rmSync rmdir
  sign spawn spawnSync stat verify writeFile writeFileSync writeSync isIP isIPv4 isIPv6 promisify inherits
  randomBytes createHash createHmac timingSafeEqual`.split(/\s+/).filter(Boolean);
const stub = {};
for (const name of names) stub[name] = unavailable(name);

// Package files the shared modules read while working (the ONNX schema), embedded by the build script: a path
// that ends with one of these names reads its text.
/* global MEZO_EMBEDDED_FILES */
const embedded = typeof MEZO_EMBEDDED_FILES === 'object' ? MEZO_EMBEDDED_FILES : {};
const embeddedFile = (path) => {
  const text = String(path);
  const name = Object.keys(embedded).find((file) => text === file || text.endsWith(`/${file}`));
  return name === undefined ? undefined : embedded[name];
};
stub.existsSync = (path) => embeddedFile(path) !== undefined;
stub.readFileSync = (path, options) => {
  const text = embeddedFile(path);
  if (text === undefined) throw new Error(`readFileSync(${String(path)}) is not available in the browser agent`);
  const encoding = typeof options === 'string' ? options : options && options.encoding;
  return encoding ? text : new TextEncoder().encode(text);
};
const normalize = (path) => {
  const out = [];
  for (const part of path.split('/')) {
    if (part === '..') out.pop();
    else if (part !== '.' && part !== '') out.push(part);
  }
  return (path.startsWith('/') ? '/' : '') + out.join('/');
};
Object.assign(stub, {
  sep: '/',
  constants: {},
  env: {},
  join: (...parts) => normalize(parts.join('/')),
  resolve: (...parts) => normalize(parts.join('/')),
  normalize,
  dirname: (path) => path.replace(/\/[^/]*\/?$/, '') || '/',
  basename: (path) => path.replace(/\/+$/, '').split('/').pop(),
  extname: (path) => (/\.[^./]*$/.exec(path) || [''])[0],
  isAbsolute: (path) => path.startsWith('/'),
  fileURLToPath: (url) => new URL(String(url)).pathname,
  tmpdir: () => '/tmp',
  endianness: () => 'LE',
  availableParallelism: () => 1,
  loadavg: () => [0, 0, 0],
  createRequire: () => unavailable('require'),
  parentPort: null,
  workerData: undefined,
});
module.exports = stub;
