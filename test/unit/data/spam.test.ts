import { describe, expect, it } from 'vitest';
import {
  CLS_ID,
  extractEmailText,
  fnv1a,
  hashTextFeatures,
  loadSpamHashed,
  loadSpamMessages,
  loadSpamTokens,
  PAD_ID,
  resolveHashedOptions,
  SEP_ID,
  SPAM_DOMAINS,
  SPAM_FOLDER_COUNTS,
  SPAM_FOLDERS,
  tokenize,
  wordId,
} from '../../../shared/data/index.js';

describe('email text extraction', () => {
  it('keeps the subject and body, drops routing headers, unfolds and decodes', () => {
    const raw = [
      'From someone@example.com  Thu Aug 22 13:17:22 2002',
      'Received: from relay.example.com',
      '\tby mx.example.com with ESMTP',
      'Subject: =?iso-8859-1?Q?Caf=E9_offer?=',
      '  continued',
      'Content-Type: text/plain',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Cheap meds =E0 vendre, click=',
      ' here.',
    ].join('\n');
    const text = extractEmailText(raw);
    expect(text.subject).toBe('Caf\u00e9 offer continued');
    expect(text.body).toBe('Cheap meds \u00e0 vendre, click here.');
    expect(text.body).not.toContain('relay');
  });

  it('walks multipart: prefers plain text in alternatives, decodes base64, drops attachments, marks HTML', () => {
    const html = '<html><body><p>Buy <b>now</b> &amp; save</p><script>x()</script></body></html>';
    const b64 = Buffer.from(html).toString('base64');
    const raw = [
      'Subject: Deal',
      'Content-Type: multipart/mixed; boundary="OUTER"',
      '',
      'preamble',
      '--OUTER',
      'Content-Type: multipart/alternative; boundary=INNER',
      '',
      '--INNER',
      'Content-Type: text/plain',
      '',
      'plain version',
      '--INNER',
      'Content-Type: text/html',
      '',
      '<p>html version</p>',
      '--INNER--',
      '--OUTER',
      'Content-Type: text/html',
      'Content-Transfer-Encoding: base64',
      '',
      b64,
      '--OUTER',
      'Content-Type: image/gif',
      'Content-Transfer-Encoding: base64',
      '',
      'R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=',
      '--OUTER--',
      'epilogue',
    ].join('\n');
    const { subject, body } = extractEmailText(raw);
    expect(subject).toBe('Deal');
    expect(body).toContain('plain version');
    expect(body).not.toContain('html version');
    expect(body.replace(/\s+/g, ' ')).toContain('Buy now & save');
    expect(body).not.toContain('x()');
    expect(body).not.toContain('R0lGOD');
    expect(body.startsWith('zzhtml ')).toBe(true);
    expect(body).not.toContain('preamble');
  });

  it('tokenises lower-case letter/digit runs, $ and !, dropping punctuation and debris', () => {
    expect(tokenize("FREE $$$ money!! Don't wait — 100% ÉTÉ 日本 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")).toEqual([
      'free', '$', '$', '$', 'money', '!', '!', 'don', 't', 'wait', '100', 'été', '日本',
    ]);
    expect(tokenize('a b c d', 2)).toEqual(['a', 'b']);
  });
});

describe('SpamAssassin corpus', () => {
  it('loads every folder with its documented message count', () => {
    const all = loadSpamMessages();
    expect(all.length).toBe(6046);
    for (const folder of SPAM_FOLDERS) {
      const messages = loadSpamMessages([folder]);
      expect(messages.length).toBe(SPAM_FOLDER_COUNTS[folder]);
      expect(messages.every((m) => m.folder === folder && m.label === (folder.startsWith('spam') ? 1 : 0))).toBe(true);
    }
    expect(all.filter((m) => m.label === 1).length).toBe(1896);
    // Header stripping leaves content: nearly every message keeps a body, most have a subject.
    expect(all.filter((m) => tokenize(m.body).length > 0).length).toBeGreaterThan(6000);
    expect(all.filter((m) => m.subject.trim() !== '').length).toBeGreaterThan(5900);
    // Only a message that pastes a whole mail into its body still shows routing headers.
    expect(all.filter((m) => /^Received:/m.test(m.body.slice(0, 200))).length).toBeLessThan(5);
  });

  it('exposes the source/target domain split', () => {
    expect(loadSpamHashed({ folders: SPAM_DOMAINS.source, dim: 64 }).classCounts()).toEqual([2500, 500]);
    expect(loadSpamHashed({ folders: SPAM_DOMAINS.target, dim: 64 }).classCounts()).toEqual([250, 1396]);
  });

  it('hashes features deterministically into unit-norm vectors of dimension D', () => {
    const folders = ['hard-ham-1', 'spam-1'] as const;
    const a = loadSpamHashed({ folders, dim: 1024 });
    const b = loadSpamHashed({ folders, dim: 1024 });
    expect(a.featureShape).toEqual([1024]);
    expect(a.size).toBe(750);
    expect(a.classCounts()).toEqual([250, 500]);
    let zeroRows = 0;
    for (let i = 0; i < a.size; i++) {
      const x = a.features(i);
      expect(Array.from(x)).toEqual(Array.from(b.features(i)));
      const norm = Math.sqrt(x.reduce((s, v) => s + v * v, 0));
      if (norm === 0) zeroRows++;
      else expect(norm).toBeCloseTo(1, 5);
      expect(x.every((v) => v >= 0)).toBe(true);
    }
    expect(zeroRows).toBeLessThan(5);
  });

  it('follows the documented recipe: FNV-1a keys, log(1 + tf), L2 normalisation', () => {
    const options = resolveHashedOptions({ dim: 4096, bigrams: true, subjectFeatures: true }, 'test');
    const out = hashTextFeatures({ subject: 'hello', body: 'buy buy now' }, options, new Float32Array(4096));
    const expected = new Float64Array(4096);
    for (const key of ['w:hello', 's:hello', 'w:buy', 'w:buy', 'w:now', 'b:buy buy', 'b:buy now']) {
      expected[fnv1a(key) % 4096]! += 1;
    }
    const logged = expected.map((v) => Math.log1p(v));
    const norm = Math.sqrt(logged.reduce((s, v) => s + v * v, 0));
    for (let j = 0; j < 4096; j++) expect(out[j]).toBeCloseTo(logged[j]! / norm, 6);
    // Character n-grams add features; the same text gives the same vector.
    const chars = resolveHashedOptions({ dim: 4096, charNgrams: [3] }, 'test');
    const c1 = hashTextFeatures({ subject: '', body: 'viagra' }, chars, new Float32Array(4096));
    expect(c1.filter((v) => v > 0).length).toBeGreaterThan(4);
    expect(Array.from(hashTextFeatures({ subject: '', body: 'viagra' }, chars, new Float32Array(4096)))).toEqual(
      Array.from(c1),
    );
  });

  it('separates spam from ham well enough for a linear model (centroid check)', () => {
    const d = loadSpamHashed({ folders: SPAM_DOMAINS.source, dim: 1024 });
    const centroid = [new Float64Array(1024), new Float64Array(1024)];
    const counts = d.classCounts();
    for (let i = 0; i < d.size; i++) {
      const c = d.label(i);
      d.features(i).forEach((v, j) => (centroid[c]![j]! += v / counts[c]!));
    }
    let correct = 0;
    for (let i = 0; i < d.size; i++) {
      const x = d.features(i);
      const dist = centroid.map((c) => x.reduce((s, v, j) => s + (v - c[j]!) ** 2, 0));
      if ((dist[1]! < dist[0]! ? 1 : 0) === d.label(i)) correct++;
    }
    expect(correct / d.size).toBeGreaterThan(0.8);
  });

  it('builds token-id sequences: [CLS] subject [SEP] body, padded with PAD, ids in [0, V)', () => {
    const d = loadSpamTokens({ folders: ['spam-1'], vocabSize: 1000, seqLength: 64 });
    expect(d.dtype).toBe('int64');
    expect(d.featureShape).toEqual([64]);
    const messages = loadSpamMessages(['spam-1']);
    for (let i = 0; i < d.size; i++) {
      const ids = d.features(i);
      expect(ids[0]).toBe(BigInt(CLS_ID));
      expect(ids.every((v) => v >= 0n && v < 1000n)).toBe(true);
    }
    const m = messages[0]!;
    const subject = tokenize(m.subject).map((t) => BigInt(wordId(t, 1000)));
    const body = tokenize(m.body).map((t) => BigInt(wordId(t, 1000)));
    const expected = [BigInt(CLS_ID), ...subject, BigInt(SEP_ID), ...body].slice(0, 64);
    while (expected.length < 64) expected.push(BigInt(PAD_ID));
    expect(Array.from(d.features(0))).toEqual(expected);
    expect(Array.from(loadSpamTokens({ folders: ['spam-1'], vocabSize: 1000, seqLength: 64 }).features(99))).toEqual(
      Array.from(d.features(99)),
    );
  });

  it('rejects unknown folders and bad sizes', () => {
    expect(() => loadSpamMessages(['spam-3' as 'spam-1'])).toThrow(
      'loadSpamMessages: folders[0] is "spam-3", expected one of easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2',
    );
    expect(() => loadSpamHashed({ dim: 0 })).toThrow(
      'loadSpamHashed: options.dim must be an integer in [1, 16777216], got 0',
    );
    expect(() => loadSpamTokens({ vocabSize: 3 })).toThrow(
      'loadSpamTokens: options.vocabSize must be an integer in [4, 2147483647], got 3',
    );
  });
});
