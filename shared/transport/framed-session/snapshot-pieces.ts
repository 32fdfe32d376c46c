/**
 * Snapshots over a link whose frames are smaller than a snapshot: the coordinator cuts the chunks into pieces
 * that fit one frame and hands them out one per request of the agent (a pull, so a slow agent sets the pace
 * and nothing is buffered), under a transfer id the agent names in each next request; an abandoned transfer
 * is dropped after a timeout or on the agent's cancel. The agent side pulls until the last piece.
 */
import { TransportError } from '../errors.js';
import { MAX_SNAPSHOT_CHUNK_BYTES, type SnapshotChunk } from '../messages.js';

/** What a piece leaves to its header fields and the link's own framing within the frame limit. */
export const PIECE_OVERHEAD = 1024;

/** Largest data slice of one piece within a frame limit: a multiple of 4 (whole float32s), at least 4. */
export function pieceBytesFor(frameLimit: number): number {
  const limit = Math.min(frameLimit, MAX_SNAPSHOT_CHUNK_BYTES + PIECE_OVERHEAD) - PIECE_OVERHEAD;
  return Math.max(4, limit - (limit % 4));
}

/** Cuts chunks into pieces of at most `pieceBytes` data bytes (offsets adjusted), so each fits one frame. */
export function* pieces(chunks: Iterable<SnapshotChunk>, pieceBytes: number): Generator<SnapshotChunk> {
  for (const chunk of chunks) {
    if (chunk.data.length <= pieceBytes) {
      yield chunk;
      continue;
    }
    for (let at = 0; at < chunk.data.length; at += pieceBytes) {
      yield { ...chunk, offset: chunk.offset + at, data: chunk.data.subarray(at, Math.min(chunk.data.length, at + pieceBytes)) };
    }
  }
}

/** One piece handed out, and whether more follow under the same transfer id. */
export interface Piece {
  transferId: string;
  piece: SnapshotChunk;
  more: boolean;
}

interface Transfer {
  agentId: string;
  iterator: Iterator<SnapshotChunk>;
  next: IteratorResult<SnapshotChunk>;
  timer?: ReturnType<typeof setTimeout>;
}

/** The coordinator side's transfers in progress. */
export class SnapshotTransfers {
  private readonly open = new Map<string, Transfer>();

  constructor(
    /** A transfer not pulled from for this long is dropped. */
    private readonly idleMs: number,
    /** A fresh transfer id (the link's own id format). */
    private readonly newId: () => string,
  ) {}

  /** Starts a transfer of `chunks` and hands out its first piece; NOT_FOUND when there is nothing to send. */
  start(agentId: string, chunks: Iterable<SnapshotChunk>, pieceBytes: number): Piece {
    const iterator = pieces(chunks, pieceBytes)[Symbol.iterator]();
    const transfer: Transfer = { agentId, iterator, next: iterator.next() };
    if (transfer.next.done) throw new TransportError('NOT_FOUND', 'fetchSnapshot: the snapshot has no data');
    return this.handOut(this.newId(), transfer);
  }

  /**
   * Checks that `transferId` is a transfer of `agentId` still open (NOT_FOUND otherwise: unknown, expired or
   * someone else's).
   */
  check(transferId: string, agentId: string): void {
    const transfer = this.open.get(transferId);
    if (!transfer || transfer.agentId !== agentId) throw new TransportError('NOT_FOUND', `snapshot transfer ${transferId} is unknown or expired`);
  }

  /** The next piece of an open transfer of `agentId`. */
  next(transferId: string, agentId: string): Piece {
    this.check(transferId, agentId);
    return this.handOut(transferId, this.open.get(transferId)!);
  }

  /** Drops a transfer (the agent gave up on it, or it timed out); unknown ids are ignored. */
  end(transferId: string): void {
    const transfer = this.open.get(transferId);
    if (!transfer) return;
    clearTimeout(transfer.timer);
    transfer.iterator.return?.();
    this.open.delete(transferId);
  }

  endAll(): void {
    for (const id of [...this.open.keys()]) this.end(id);
  }

  private handOut(transferId: string, transfer: Transfer): Piece {
    const piece = transfer.next.value as SnapshotChunk;
    transfer.next = transfer.iterator.next();
    const more = !transfer.next.done;
    clearTimeout(transfer.timer);
    if (more) {
      transfer.timer = setTimeout(() => this.end(transferId), this.idleMs);
      (transfer.timer as { unref?: () => void }).unref?.();
      this.open.set(transferId, transfer);
    } else this.open.delete(transferId);
    return { transferId, piece, more };
  }
}

/** One piece as the agent side receives it: the frame's bytes and the transfer fields beside them. */
export interface ReceivedPiece {
  bytes: Uint8Array;
  transferId: string;
  more: boolean;
}

/**
 * The agent side of a pulled snapshot: `first` asks for the transfer, `next` for each further piece; a
 * transfer left before its last piece is cancelled (`cancel`, best effort) so the coordinator drops it now
 * rather than at its timeout.
 */
export async function* pullSnapshot(
  first: () => Promise<ReceivedPiece>,
  next: (transferId: string) => Promise<ReceivedPiece>,
  cancel: (transferId: string) => void,
  decode: (bytes: Uint8Array) => SnapshotChunk,
): AsyncGenerator<SnapshotChunk> {
  let reply = await first();
  const transferId = reply.transferId;
  let complete = false;
  try {
    for (;;) {
      yield decode(reply.bytes);
      if (!reply.more) break;
      reply = await next(transferId);
    }
    complete = true;
  } finally {
    if (!complete && transferId !== '') cancel(transferId);
  }
}
