#!/usr/bin/env node
// Writes test/unit/noise/golden-vectors.json from the TypeScript kernel (the executable contract). Run once
// when the contract is defined (`npm run build && node scripts/generate-golden-vectors.mjs`); afterwards the
// committed file is the reference both implementations are checked against, and it must never be regenerated
// without a deliberate, documented change of the noise contract. Extensions add their own section (`lowrank`,
// written with version 1 of the low-rank extension) and leave the v1 vectors as they are.
import { writeFileSync } from 'node:fs';
import { NoiseEngine } from '../dist/shared/noise/engine.js';
import { jsKernel } from '../dist/shared/noise/js-kernel.js';

const engine = new NoiseEngine(jsKernel);
const seeds = ['0', '1', '42', '16045690984503098125', '18446744073709551615'];
const offsets = [0, 5, 1_000_003, 2 ** 40 + 3];
const count = 16;
const bits = (values) => Array.from(new Uint32Array(values.buffer), (b) => b.toString(16).padStart(8, '0'));

const vectors = [];
for (const distribution of ['gaussian', 'rademacher']) {
  for (const seed of seeds) {
    for (const offset of offsets) {
      const z = new Float32Array(count);
      engine.sample(z, seed, { offset, distribution });
      vectors.push({ distribution, seed, offset, bits: bits(z), values: Array.from(z) });
    }
  }
}

// Low-rank extension v1: two matrices and a bias between them, padding after; seeds 180388626433 and
// 184683593727 share the high word 42 (hence V), as do 0 and 1.
const lowRankLayout = [
  { offset: 0, rows: 6, cols: 5 },
  { offset: 35, rows: 7, cols: 6 },
];
const lowRankLength = 80;
const lowRankSeeds = ['0', '1', '42', '180388626433', '184683593727', '16045690984503098125', '18446744073709551615'];
const lowRankVectors = [];
for (const rank of [1, 3, 4]) {
  for (const seed of lowRankSeeds) {
    const z = new Float32Array(lowRankLength);
    engine.sample(z, seed, { distribution: 'lowrank', lowRank: { rank, matrices: lowRankLayout } });
    lowRankVectors.push({ rank, seed, bits: bits(z), values: Array.from(z) });
  }
}
const lowrank = {
  extension: 'lowrank v1 (docs/noise.md)',
  matrices: lowRankLayout,
  count: lowRankLength,
  vectors: lowRankVectors,
};

const file = new URL('../test/unit/noise/golden-vectors.json', import.meta.url);
writeFileSync(
  file,
  `${JSON.stringify({ contract: 'mezo-noise-v1 (docs/noise.md)', count, vectors, lowrank }, null, 1)}\n`,
);
console.log(
  `wrote ${vectors.length} v1 vectors and ${lowRankVectors.length} lowrank vectors to ${file.pathname.split('/').slice(-4).join('/')}`,
);
