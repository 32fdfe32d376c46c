/**
 * On-device text featurisation with no vocabulary to ship: words are hashed (FNV-1a, see ../hash.ts), so two
 * devices that never exchanged data still map "viagra" to the same feature, and a new word needs no update.
 *
 * Tokens: the lower-cased text split into runs of Unicode letters and digits, plus single "$" and "!"
 * (classic spam signals); all other characters separate tokens. Runs longer than 24 characters (base64
 * debris, hashes, URLs glued together) are dropped.
 */
import { describe, optionsObject, requireInt } from '../describe.js';
import { FNV_OFFSET_BASIS, fnv1aUpdate } from '../hash.js';
import type { EmailText } from './email-text.js';

const TOKEN_PATTERN = /[\p{L}\p{N}]+|[$!]/gu;
export const MAX_TOKEN_CHARS = 24;

/** The first `limit` tokens of `text` (see the file comment). */
export function tokenize(text: string, limit = Infinity): string[] {
  const out: string[] = [];
  const pattern = new RegExp(TOKEN_PATTERN.source, 'gu');
  const lower = text.toLowerCase();
  for (let m = pattern.exec(lower); m !== null && out.length < limit; m = pattern.exec(lower)) {
    if (m[0].length <= MAX_TOKEN_CHARS) out.push(m[0]);
  }
  return out;
}

export interface HashedFeatureOptions {
  /** Feature dimension D (default 4096). Any size works; a power of two is customary. */
  dim?: number;
  /** Add word bigrams "b:w1 w2" (default true). */
  bigrams?: boolean;
  /** Character n-gram sizes over "<word>", e.g. [3, 4] (default none: they cost ~4× the time). */
  charNgrams?: readonly number[];
  /** Also hash subject words under their own prefix "s:" (default true): a subject word means more. */
  subjectFeatures?: boolean;
  /** Body tokens beyond this many are ignored (default 5000), bounding the cost of a huge message. */
  maxTokens?: number;
}

export interface ResolvedHashedOptions {
  dim: number;
  bigrams: boolean;
  charNgrams: readonly number[];
  subjectFeatures: boolean;
  maxTokens: number;
}

export function resolveHashedOptions(options: HashedFeatureOptions | undefined, method: string): ResolvedHashedOptions {
  const opts = optionsObject(options, `${method}: options`);
  const dim = requireInt(opts.dim ?? 4096, `${method}: options.dim`, 1, 1 << 24);
  const charNgrams = opts.charNgrams ?? [];
  if (!Array.isArray(charNgrams)) {
    throw new TypeError(`${method}: options.charNgrams must be an array of sizes, got ${describe(charNgrams)}`);
  }
  charNgrams.forEach((n, i) => requireInt(n, `${method}: options.charNgrams[${i}]`, 1, 8));
  for (const key of ['bigrams', 'subjectFeatures'] as const) {
    if (opts[key] !== undefined && typeof opts[key] !== 'boolean') {
      throw new TypeError(`${method}: options.${key} must be a boolean, got ${describe(opts[key])}`);
    }
  }
  return {
    dim,
    bigrams: opts.bigrams ?? true,
    charNgrams: [...charNgrams],
    subjectFeatures: opts.subjectFeatures ?? true,
    maxTokens: requireInt(opts.maxTokens ?? 5000, `${method}: options.maxTokens`, 1),
  };
}

// Prefix hashes, computed once: hashing "w:" + token is fnv1aUpdate(W_PREFIX, token).
const W_PREFIX = fnv1aUpdate(FNV_OFFSET_BASIS, 'w:');
const B_PREFIX = fnv1aUpdate(FNV_OFFSET_BASIS, 'b:');
const S_PREFIX = fnv1aUpdate(FNV_OFFSET_BASIS, 's:');
const C_PREFIX = fnv1aUpdate(FNV_OFFSET_BASIS, 'c:');

function countTokens(tokens: readonly string[], out: Float32Array, o: ResolvedHashedOptions): void {
  const dim = o.dim;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    out[fnv1aUpdate(W_PREFIX, token) % dim]! += 1;
    if (o.bigrams && i > 0) {
      out[fnv1aUpdate(fnv1aUpdate(fnv1aUpdate(B_PREFIX, tokens[i - 1]!), ' '), token) % dim]! += 1;
    }
    if (o.charNgrams.length > 0) {
      const padded = `<${token}>`;
      for (const n of o.charNgrams) {
        for (let s = 0; s + n <= padded.length; s++) out[fnv1aUpdate(C_PREFIX, padded.slice(s, s + n)) % dim]! += 1;
      }
    }
  }
}

/**
 * Writes the hashed features of one message into `out` (length dim): counts of "w:word", "b:w1 w2",
 * "c:gram" and "s:word" keys at FNV-1a(key) mod dim, then v ← log(1 + v), then scaling to unit L2 norm (an
 * empty message stays all zeros). Subject and body are tokenised separately, so no bigram spans them.
 */
export function hashTextFeatures(text: EmailText, options: ResolvedHashedOptions, out: Float32Array): Float32Array {
  out.fill(0);
  const subject = tokenize(text.subject);
  const body = tokenize(text.body, options.maxTokens);
  countTokens(subject, out, options);
  countTokens(body, out, options);
  if (options.subjectFeatures) for (const token of subject) out[fnv1aUpdate(S_PREFIX, token) % options.dim]! += 1;
  let sumSquares = 0;
  for (let j = 0; j < out.length; j++) {
    const v = out[j]!;
    if (v === 0) continue;
    const w = Math.log1p(v);
    out[j] = w;
    sumSquares += w * w;
  }
  if (sumSquares > 0) {
    const scale = 1 / Math.sqrt(sumSquares);
    for (let j = 0; j < out.length; j++) out[j] = out[j]! * scale;
  }
  return out;
}

/** Reserved token ids of the token-id form. */
export const PAD_ID = 0;
export const CLS_ID = 1;
export const SEP_ID = 2;
const FIRST_WORD_ID = 3;

export interface TokenIdOptions {
  /** Vocabulary size V (default 8192): ids 0..2 are PAD, CLS, SEP; words hash into 3..V-1. */
  vocabSize?: number;
  /** Sequence length L (default 128): longer messages are truncated, shorter ones padded with PAD (0). */
  seqLength?: number;
}

export interface ResolvedTokenIdOptions {
  vocabSize: number;
  seqLength: number;
}

export function resolveTokenIdOptions(options: TokenIdOptions | undefined, method: string): ResolvedTokenIdOptions {
  const opts = optionsObject(options, `${method}: options`);
  return {
    vocabSize: requireInt(opts.vocabSize ?? 8192, `${method}: options.vocabSize`, FIRST_WORD_ID + 1, 2 ** 31 - 1),
    seqLength: requireInt(opts.seqLength ?? 128, `${method}: options.seqLength`, 2),
  };
}

/** Id of a word: 3 + FNV-1a("w:" + word) mod (V − 3), so no word collides with a reserved id. */
export function wordId(token: string, vocabSize: number): number {
  return FIRST_WORD_ID + (fnv1aUpdate(W_PREFIX, token) % (vocabSize - FIRST_WORD_ID));
}

/**
 * Writes the token ids of one message into `out` (length L): [CLS] subject words [SEP] body words, truncated
 * to L and padded with PAD. A model's attention mask is simply id != PAD.
 */
export function textTokenIds(text: EmailText, options: ResolvedTokenIdOptions, out: BigInt64Array): BigInt64Array {
  const { vocabSize, seqLength } = options;
  out.fill(0n);
  let k = 0;
  out[k++] = BigInt(CLS_ID);
  for (const token of tokenize(text.subject, seqLength)) {
    if (k >= seqLength) return out;
    out[k++] = BigInt(wordId(token, vocabSize));
  }
  if (k >= seqLength) return out;
  out[k++] = BigInt(SEP_ID);
  for (const token of tokenize(text.body, seqLength - k)) {
    if (k >= seqLength) break;
    out[k++] = BigInt(wordId(token, vocabSize));
  }
  return out;
}
