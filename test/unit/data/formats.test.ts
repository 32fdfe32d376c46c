import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  encodeMzdsHeader,
  LocalDataset,
  readCsv,
  readJsonl,
  readMzds,
  readMzdsHeader,
  splitCsvLine,
  writeCsv,
  writeJsonl,
  writeMzds,
} from '../../../shared/data/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mezo-data-formats-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text?: string | Uint8Array): string => {
  const path = join(dir, name);
  if (text !== undefined) writeFileSync(path, text);
  return path;
};

/** Awkward float32 values on purpose: tiny, huge, negative zero, non-terminating binary fractions. */
function sample(rows = 7, width = 5): LocalDataset<Float32Array> {
  const features = new Float32Array(rows * width);
  for (let j = 0; j < features.length; j++) features[j] = Math.fround(Math.sin(j * 1.7) * 10 ** ((j % 9) - 4));
  features[3] = -0;
  features[4] = 3.4e38;
  return new LocalDataset({
    features,
    labels: Int32Array.from({ length: rows }, (_, i) => (i * 3) % 4),
    featureShape: [width],
    numClasses: 4,
  });
}

function tokens(): LocalDataset<BigInt64Array> {
  return new LocalDataset({
    features: BigInt64Array.from({ length: 12 }, (_, j) => BigInt(j * 1_000_003)),
    labels: [1, 0, 1],
    featureShape: [4],
    numClasses: 2,
  });
}

function expectSameData(a: LocalDataset, b: LocalDataset): void {
  expect(b.size).toBe(a.size);
  expect(b.featureShape).toEqual(a.featureShape);
  expect(b.numClasses).toBe(a.numClasses);
  expect(b.dtype).toBe(a.dtype);
  expect(Array.from(b.labels())).toEqual(Array.from(a.labels()));
  for (let i = 0; i < a.size; i++) {
    const x = a.features(i);
    const y = b.features(i);
    // Bit-exact, including the sign of zero.
    if (x instanceof Float32Array) {
      expect(new Uint32Array(Float32Array.from(y as Float32Array).buffer)).toEqual(
        new Uint32Array(Float32Array.from(x).buffer),
      );
    } else {
      expect(Array.from(y as BigInt64Array)).toEqual(Array.from(x));
    }
  }
}

describe('JSONL', () => {
  it('round-trips float32 rows bit-exactly', async () => {
    const d = sample();
    await writeJsonl(file('a.jsonl'), d);
    expectSameData(d, await readJsonl(file('a.jsonl'), { numClasses: 4 }));
  });

  it('round-trips token ids with custom field names', async () => {
    const d = tokens();
    await writeJsonl(file('t.jsonl'), d, { featureField: 'ids', labelField: 'label' });
    expect(readFileSync(file('t.jsonl'), 'utf8').split('\n')[0]).toBe('{"ids":[0,1000003,2000006,3000009],"label":1}');
    expectSameData(d, await readJsonl(file('t.jsonl'), { dtype: 'int64', featureField: 'ids', labelField: 'label' }));
  });

  it('infers numClasses and width, skips blank lines, reads CRLF', async () => {
    const d = await readJsonl(file('b.jsonl', '{"x":[1,2],"y":0}\r\n\r\n{"x":[3,4],"y":2}\r\n'));
    expect(d.size).toBe(2);
    expect(d.numClasses).toBe(3);
    expect(d.featureShape).toEqual([2]);
  });

  it('applies a declared feature shape', async () => {
    const d = await readJsonl(file('s.jsonl', '{"x":[1,2,3,4],"y":0}\n'), { featureShape: [1, 2, 2] });
    expect(d.featureShape).toEqual([1, 2, 2]);
  });

  const bad: [string, string, RegExp | string, object?][] = [
    ['short row', '{"x":[1,2,3],"y":0}\n{"x":[1,2],"y":1}\n', 'bad.jsonl line 2: x has 2 values, expected 3'],
    ['declared width', '{"x":[1,2,3],"y":0}\n', 'bad.jsonl line 1: x has 3 values, expected 4', { featureShape: [4] }],
    ['not JSON', '{"x":[1],"y":0}\n{"x":[1],\n', /^bad\.jsonl line 2: not valid JSON \(/],
    ['string value', '{"x":[1,"a",3],"y":0}\n', 'bad.jsonl line 1: x[1] must be a number, got "a"'],
    ['missing label', '{"x":[1]}\n', 'bad.jsonl line 1: y is missing'],
    ['fractional label', '{"x":[1],"y":1.5}\n', 'bad.jsonl line 1: y must be an integer, got 1.5'],
    ['negative label', '{"x":[1],"y":-1}\n', 'bad.jsonl line 1: y must be >= 0, got -1'],
    [
      'label out of range',
      '{"x":[1],"y":10}\n',
      'bad.jsonl line 1: y is 10, expected an integer in [0, 10)',
      { numClasses: 10 },
    ],
    ['not an object', '[1,2]\n', 'bad.jsonl line 1: record must be a JSON object, got an array of 2'],
    ['float overflow', '{"x":[1e39],"y":0}\n', 'bad.jsonl line 1: x[0] is 1e+39, outside the float32 range'],
    [
      'fractional token',
      '{"x":[1.5],"y":0}\n',
      'bad.jsonl line 1: x[0] must be an integer, got 1.5',
      { dtype: 'int64' },
    ],
    ['empty file', '\n', 'bad.jsonl: no records (pass options.featureShape to accept an empty file)'],
  ];
  for (const [what, text, message, options] of bad) {
    it(`rejects a ${what} with file, line and field`, async () => {
      await expect(readJsonl(file('bad.jsonl', text), options)).rejects.toThrow(message);
    });
  }

  it('reports a missing file as ENOENT', async () => {
    await expect(readJsonl(file('missing.jsonl'))).rejects.toThrow(/ENOENT/);
  });
});

describe('CSV', () => {
  it('splits quoted fields', () => {
    expect(splitCsvLine('1,"2,5","say ""hi""",', ',', 'x')).toEqual(['1', '2,5', 'say "hi"', '']);
    expect(() => splitCsvLine('1,"2', ',', 'f.csv line 3')).toThrow('f.csv line 3: field 2 has an unterminated quote');
  });

  it('round-trips with and without a header, and with another delimiter', async () => {
    const d = sample();
    await writeCsv(file('a.csv'), d);
    expect(readFileSync(file('a.csv'), 'utf8').split('\n')[0]).toBe('f0,f1,f2,f3,f4,label');
    expectSameData(d, await readCsv(file('a.csv'), { numClasses: 4 }));
    await writeCsv(file('b.csv'), d, { header: false, delimiter: ';' });
    expectSameData(d, await readCsv(file('b.csv'), { delimiter: ';', numClasses: 4 }));
    const t = tokens();
    await writeCsv(file('t.csv'), t);
    expectSameData(t, await readCsv(file('t.csv'), { dtype: 'int64' }));
  });

  it('finds the label column by name or index', async () => {
    const byName = await readCsv(file('n.csv', 'label,p0,p1\n1,0.5,0.25\n0,1,2\n'));
    expect(Array.from(byName.labels())).toEqual([1, 0]);
    expect(Array.from(byName.features(0))).toEqual([0.5, 0.25]);
    const byIndex = await readCsv(file('i.csv', '7,1,0.5\n8,0,0.25\n'), { labelColumn: 1 });
    expect(Array.from(byIndex.labels())).toEqual([1, 0]);
    expect(Array.from(byIndex.features(1))).toEqual([8, 0.25]);
    const named = await readCsv(file('c.csv', 'a,cls,b\n1,1,2\n'), { labelColumn: 'cls' });
    expect(Array.from(named.features(0))).toEqual([1, 2]);
  });

  const bad: [string, string, string, object?][] = [
    ['short line', 'a,b,label\n1,2,0\n1,0\n', 'bad.csv line 3: has 2 columns, expected 3'],
    ['text cell', 'px0,px1,label\n1,abc,0\n', 'bad.csv line 2: column px1 is "abc", expected a finite number'],
    ['empty cell', '1,,0\n', 'bad.csv line 1: column 2 is empty'],
    ['bad label', 'a,label\n1,x\n', 'bad.csv line 2: column label is "x", expected a non-negative integer class index'],
    [
      'label out of range',
      'a,label\n1,5\n',
      'bad.csv line 2: column label is 5, expected an integer in [0, 2)',
      { numClasses: 2 },
    ],
    ['NaN', 'a,label\nNaN,1\n', 'bad.csv line 2: column a is "NaN", expected a finite number'],
    [
      'unknown label column',
      'a,b\n1,0\n',
      'bad.csv: label column "y" is not in the header (a, b)',
      { labelColumn: 'y' },
    ],
  ];
  for (const [what, text, message, options] of bad) {
    it(`rejects a ${what} with file, line and column`, async () => {
      await expect(readCsv(file('bad.csv', text), options)).rejects.toThrow(message);
    });
  }
});

describe('MZDS binary', () => {
  it('writes the documented header', () => {
    const h = encodeMzdsHeader('float32', [1, 28, 28], 10, 5);
    expect(h.length).toBe(40); // 24 + 3·4 = 36, rounded up to 40
    expect(h.toString('latin1', 0, 4)).toBe('MZDS');
    expect([h.readUInt16LE(4), h[6], h[7], h.readUInt32LE(8), h.readUInt32LE(12)]).toEqual([1, 1, 3, 10, 40]);
    expect(h.readBigUInt64LE(16)).toBe(5n);
    expect([h.readUInt32LE(24), h.readUInt32LE(28), h.readUInt32LE(32), h.readUInt32LE(36)]).toEqual([1, 28, 28, 0]);
  });

  it('round-trips float32 and int64 datasets, and views', async () => {
    const d = sample(33, 6);
    await writeMzds(file('a.mzds'), d);
    expect(readFileSync(file('a.mzds')).length).toBe(32 + 33 * 6 * 4 + 33 * 4);
    expectSameData(d, await readMzds(file('a.mzds')));
    const header = await readMzdsHeader(file('a.mzds'));
    expect(header).toMatchObject({ dtype: 'float32', rows: 33, featureShape: [6], numClasses: 4, headerBytes: 32 });
    const t = tokens();
    await writeMzds(file('t.mzds'), t);
    expectSameData(t, await readMzds(file('t.mzds')));
    const view = d.subset([30, 1, 7]);
    await writeMzds(file('v.mzds'), view);
    expectSameData(view, await readMzds(file('v.mzds')));
  });

  it('rejects corrupt files naming the problem', async () => {
    const good = readFileSync(file('a.mzds'));
    const variant = (name: string, edit: (b: Buffer) => Buffer): string => file(name, edit(Buffer.from(good)));
    await expect(readMzds(variant('m.mzds', (b) => (b.write('NOPE', 0, 'latin1'), b)))).rejects.toThrow(
      'm.mzds: magic is "NOPE", expected "MZDS" (not an MZDS dataset file)',
    );
    await expect(readMzds(variant('v.mzds', (b) => (b.writeUInt16LE(9, 4), b)))).rejects.toThrow(
      'v.mzds: version is 9, this reader understands version 1',
    );
    await expect(readMzds(variant('s.mzds', (b) => b.subarray(0, b.length - 1)))).rejects.toThrow(
      `s.mzds: file is ${good.length - 1} bytes, expected ${good.length} for 33 rows of float32[6] plus labels`,
    );
    const labelAt = (row: number): number => good.length - 33 * 4 + row * 4;
    await expect(readMzds(variant('l.mzds', (b) => (b.writeInt32LE(7, labelAt(17)), b)))).rejects.toThrow(
      'l.mzds row 17: label is 7, expected an integer in [0, 4)',
    );
    await expect(readMzds(variant('f.mzds', (b) => (b.writeFloatLE(NaN, 32 + (2 * 6 + 3) * 4), b)))).rejects.toThrow(
      'f.mzds row 2: feature 3 is NaN, expected a finite number',
    );
    await expect(readMzds(file('tiny.mzds', 'MZ'))).rejects.toThrow(
      'tiny.mzds: file is 2 bytes, shorter than the 24-byte MZDS header',
    );
  });
});
