#!/usr/bin/env node
// Checks one noise addon file against the contract without the rest of the package, so it runs on any
// architecture's Node.js (scripts/arm64-proof.sh runs it under qemu-user):
//
//   node scripts/noise-check.mjs <addon.node> [golden-vectors.json]
//
// It checks the Philox4x32-10 known answers (Random123) and the committed golden vectors, then prints JSON with
// SHA-256 digests of larger perturb/accumulate results (Gaussian, Rademacher and low-rank, 1 and 4 threads, odd
// offsets and ranges). An addon built before the low-rank extension (no lowRankVersion) skips its checks. Two addons keep the contract's promise when both pass and their digests are equal. Exits 1 on a
// failed check.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

const [addonArg, goldenArg = new URL('../test/unit/noise/golden-vectors.json', import.meta.url).pathname] = process.argv.slice(2);
if (addonArg === undefined) {
  console.error('usage: node scripts/noise-check.mjs <addon.node> [golden-vectors.json]');
  process.exit(2);
}
const addon = createRequire(import.meta.url)(resolve(addonArg));
const golden = JSON.parse(readFileSync(goldenArg, 'utf8'));
const DIST = { gaussian: 0, rademacher: 1 };
const failures = [];

const KNOWN_ANSWERS = [
  [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
  [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
  [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
];
for (const [counter, key, expected] of KNOWN_ANSWERS) {
  const out = new Uint32Array(4);
  addon.philox(out, Uint32Array.from(counter), Uint32Array.from(key));
  if (out.some((word, i) => word !== expected[i])) failures.push(`philox(${counter}, ${key})`);
}

const hex = (bits) => Array.from(bits, (w) => w.toString(16).padStart(8, '0'));
for (const v of golden.vectors) {
  // 0 + 1·z is z exactly, so perturbing zeros with scale 1 samples the noise itself.
  const z = new Float32Array(golden.count);
  const seed = BigInt(v.seed);
  addon.perturb(z, Number(seed & 0xffffffffn), Number(seed >> 32n), 1, v.offset, 0, z.length, DIST[v.distribution]);
  const bits = hex(new Uint32Array(z.buffer));
  if (bits.some((b, i) => b !== v.bits[i])) failures.push(`golden ${v.distribution} seed ${v.seed} offset ${v.offset}`);
}

/** A reproducible slab: xorshift32 words mapped to [-0.5, 0.5). */
function slabOf(length, seed) {
  const slab = new Float32Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    slab[i] = x / 4294967296 - 0.5;
  }
  return slab;
}

const digests = {};
const LENGTH = (1 << 20) + 13; // above the addon's threshold for splitting over threads
for (const [name, dist] of Object.entries(DIST)) {
  for (const threads of [1, 4]) {
    addon.setThreads(threads);
    const slab = slabOf(LENGTH, 7 + dist);
    addon.perturb(slab, 0x0badf00d, 0x12, 1e-3, 2 ** 33 + 1, 3, LENGTH - 5, dist);
    const keys = Uint32Array.from({ length: 32 }, (_, i) => (i * 0x9e3779b9) >>> 0);
    const coeffs = Float32Array.from({ length: 16 }, (_, i) => (i % 2 ? -1 : 1) * 1e-4 * (i + 1));
    addon.accumulate(slab, keys, coeffs, 2 ** 33 + 1, 0, LENGTH, dist);
    digests[`${name}-threads${threads}`] = createHash('sha256').update(new Uint8Array(slab.buffer)).digest('hex');
  }
}

// Edges of the vector paths: ragged heads and tails, every lane offset, runs shorter and longer than one bulk step,
// and the counter's low word wrapping inside a vector of blocks (Gaussian near block 2^32, Rademacher likewise).
{
  const edges = createHash('sha256');
  const starts = [0, 1, 3, 5, 17, 2 ** 34 - 37, 2 ** 34 - 3, 2 ** 39 - 300, 2 ** 39 - 1];
  const lengths = [1, 2, 7, 15, 16, 17, 63, 64, 65, 129, 511, 513, 1029, 2100];
  for (const [name, dist] of Object.entries(DIST)) {
    for (const offset of starts) {
      for (const length of lengths) {
        const slab = slabOf(length + 6, offset % 1000 + length);
        addon.perturb(slab, 0x9e3779b9, 0x7f4a7c15, 0.25, offset, 3, length + 3, dist);
        edges.update(`${name} ${offset} ${length}\0`).update(new Uint8Array(slab.buffer));
      }
    }
  }
  digests.edges = edges.digest('hex');
}

// Low-rank extension v1: its golden vectors, and digests over a layout with odd shapes (cols not a multiple of 4,
// a range starting mid-row, a thread split inside a matrix).
const lowRank = addon.lowRankVersion === 1;
if (lowRank && golden.lowrank !== undefined) {
  const matrices = Float64Array.from(golden.lowrank.matrices.flatMap((m) => [m.offset, m.rows, m.cols]));
  for (const v of golden.lowrank.vectors) {
    const z = new Float32Array(golden.lowrank.count);
    const seed = BigInt(v.seed);
    addon.perturb(z, Number(seed & 0xffffffffn), Number(seed >> 32n), 1, 0, 0, z.length, 2, v.rank, matrices);
    const bits = hex(new Uint32Array(z.buffer));
    if (bits.some((b, i) => b !== v.bits[i])) failures.push(`golden lowrank rank ${v.rank} seed ${v.seed}`);
  }
}
if (lowRank) {
  const base = 2 ** 33 + 1;
  const matrices = Float64Array.of(base + 5, 1001, 997, base + 5 + 1001 * 997 + 31, 130, 257);
  for (const threads of [1, 4]) {
    addon.setThreads(threads);
    const slab = slabOf(LENGTH, 11);
    addon.perturb(slab, 0x0badf00d, 0x12, 1e-3, base, 1003, LENGTH - 5, 2, 4, matrices);
    const keys = Uint32Array.from({ length: 16 }, (_, i) => (i % 4 === 1 ? 0x12 : (i * 0x9e3779b9) >>> 0));
    const coeffs = Float32Array.from({ length: 8 }, (_, i) => (i % 2 ? -1 : 1) * 1e-4 * (i + 1));
    addon.accumulate(slab, keys, coeffs, base, 0, LENGTH, 2, 3, matrices);
    digests[`lowrank-threads${threads}`] = createHash('sha256').update(new Uint8Array(slab.buffer)).digest('hex');
  }
}
addon.setThreads(1);

const report = {
  arch: process.arch,
  simd: addon.simd(),
  philoxKnownAnswers: KNOWN_ANSWERS.length,
  goldenVectors: golden.vectors.length,
  lowRankVectors: lowRank ? (golden.lowrank?.vectors.length ?? 0) : 0,
  failures,
  digests,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
if (failures.length > 0) process.exit(1);
