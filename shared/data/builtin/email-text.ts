/**
 * Turns a raw RFC 822 message into the two texts a spam model should see: the subject and the readable body.
 * Routing headers (Received, Message-ID, dates, list footers in headers) are dropped: they identify the
 * mailbox and collection date rather than the content, and would let a model "detect" a folder instead of
 * spam. Text is handled as a byte string (latin1, one character per byte), so decoding never depends on a
 * guessed charset and every device derives the same characters from the same file.
 */

export interface EmailText {
  subject: string;
  body: string;
}

const MAX_DEPTH = 6;

interface Part {
  headers: Map<string, string>;
  body: string;
}

/** Splits a message or MIME part into unfolded headers (lower-cased names, first occurrence wins) and body. */
function splitPart(raw: string): Part {
  const match = /\r?\n\r?\n/.exec(raw);
  const head = match === null ? raw : raw.slice(0, match.index);
  const body = match === null ? '' : raw.slice(match.index + match[0].length);
  const headers = new Map<string, string>();
  let name = '';
  for (const line of head.split(/\r?\n/)) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && name !== '') {
      headers.set(name, `${headers.get(name)!} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    // The mbox "From sender date" line and other junk have no "Name:" form; they are skipped.
    if (colon <= 0 || /\s/.test(line.slice(0, colon))) {
      name = '';
      continue;
    }
    const key = line.slice(0, colon).toLowerCase();
    if (headers.has(key)) {
      name = '';
      continue;
    }
    name = key;
    headers.set(key, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** Quoted-printable: soft line breaks removed, =XX turned into the byte. */
function decodeQuotedPrintable(text: string): string {
  return text
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function decodeBase64(text: string): string {
  return Buffer.from(text.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('latin1');
}

/** RFC 2047 encoded words in headers: =?charset?B?...?= and =?charset?Q?...?=. */
function decodeEncodedWords(value: string): string {
  return value.replace(/=\?[^?\s]+\?([BbQq])\?([^?\s]*)\?=/g, (_, kind: string, text: string) =>
    kind.toUpperCase() === 'B' ? decodeBase64(text) : decodeQuotedPrintable(text.replace(/_/g, ' ')),
  );
}

const ENTITIES: Record<string, string> = { nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Visible text of an HTML fragment: scripts, styles and comments removed, tags turned into spaces. */
export function htmlToText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, ref: string) => {
      if (ref[0] === '#') {
        const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
        return code > 0 && code < 0x110000 ? String.fromCodePoint(code) : ' ';
      }
      return ENTITIES[ref.toLowerCase()] ?? whole;
    });
}

/** A header parameter such as boundary="abc" or charset=us-ascii. */
function parameter(value: string, name: string): string | undefined {
  const match = new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(value);
  return match === null ? undefined : (match[1] ?? match[2]);
}

/** What walking the MIME tree noticed beyond the text itself. */
interface WalkState {
  sawHtml: boolean;
}

function partText(part: Part, depth: number, state: WalkState): string {
  const contentType = part.headers.get('content-type') ?? 'text/plain';
  const type = contentType.split(';')[0]!.trim().toLowerCase() || 'text/plain';
  if (type.startsWith('multipart/')) {
    const boundary = parameter(contentType, 'boundary');
    if (boundary === undefined || depth >= MAX_DEPTH) return '';
    const children = splitMultipart(part.body, boundary).map(splitPart);
    if (type === 'multipart/alternative') {
      // The same content twice (plain and HTML) would double every count; prefer the plain version.
      const typeOf = (c: Part): string => (c.headers.get('content-type') ?? 'text/plain').toLowerCase();
      if (children.some((c) => typeOf(c).startsWith('text/html'))) state.sawHtml = true;
      const plain = children.find((c) => typeOf(c).startsWith('text/plain'));
      const chosen = plain ?? children[children.length - 1];
      return chosen === undefined ? '' : partText(chosen, depth + 1, state);
    }
    return children.map((c) => partText(c, depth + 1, state)).join('\n');
  }
  if (type === 'message/rfc822' && depth < MAX_DEPTH) {
    const inner = splitPart(part.body);
    return `${decodeEncodedWords(inner.headers.get('subject') ?? '')}\n${partText(inner, depth + 1, state)}`;
  }
  // Attachments (images, signatures, archives) carry no readable text.
  if (!type.startsWith('text/')) return '';
  const encoding = (part.headers.get('content-transfer-encoding') ?? '').trim().toLowerCase();
  let text = part.body;
  if (encoding === 'quoted-printable') text = decodeQuotedPrintable(text);
  else if (encoding === 'base64') text = decodeBase64(text);
  if (type !== 'text/html') return text;
  state.sawHtml = true;
  return htmlToText(text);
}

function splitMultipart(body: string, boundary: string): string[] {
  const delimiter = `--${boundary}`;
  const pieces = body.split(delimiter);
  const parts: string[] = [];
  // pieces[0] is the preamble; a piece starting with "--" follows the closing delimiter (the epilogue).
  for (let i = 1; i < pieces.length; i++) {
    const piece = pieces[i]!;
    if (piece.startsWith('--')) break;
    parts.push(piece.replace(/^[ \t]*\r?\n/, ''));
  }
  return parts;
}

/**
 * Subject and readable body of a raw message (decoded transfer encodings, HTML reduced to text, non-text
 * attachments dropped). A message with an HTML part gets the marker word "zzhtml" at the start of its body,
 * so the fact of HTML mail, a strong signal in 2002-era spam, survives the stripping of the tags.
 */
export function extractEmailText(raw: string): EmailText {
  const message = splitPart(raw);
  const subject = decodeEncodedWords(message.headers.get('subject') ?? '');
  const state: WalkState = { sawHtml: false };
  const body = partText(message, 0, state);
  return { subject, body: state.sawHtml ? `zzhtml ${body}` : body };
}
