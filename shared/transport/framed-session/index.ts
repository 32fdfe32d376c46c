/**
 * The framed-session core: what a transport that moves protocol messages as frames over some link (NATS
 * subjects, an in-process queue, a WebSocket) needs beyond moving them, written once. A link built on it
 * supplies only how frames move:
 *
 * - server-session.ts, client-session.ts: a session's two ends (held uplink until the open is answered or the
 *   handler listens, decoding and validation on receipt, the end reported once, sending refused after it);
 *   a link subclasses them with how a frame and an end frame leave.
 * - inbox.ts: the receiving end of one direction, which both session ends use.
 * - session-table.ts: the open sessions by id.
 * - end-frame.ts: an end (or a call's outcome) as a status name and one line of text; size-limit errors.
 * - liveness.ts: ending agent-side sessions that heard nothing within their window.
 * - snapshot-pieces.ts: snapshots cut into frame-sized pieces and pulled one by one.
 * - metering.ts: request bytes counted per agent only for accepted calls.
 * - calls-in-flight.ts: the calls a closing listener gives a grace period.
 *
 * The in-memory transport (../in-memory-transport.ts) and NATS (../nats/) are built on it.
 */
export { SessionInbox, type SessionInboxOptions } from './inbox.js';
export { FramedServerSession } from './server-session.js';
export { FramedClientSession, type ClientSessionState } from './client-session.js';
export { SessionTable } from './session-table.js';
export { endStatus, errorOfStatus, statusText, tooLarge, MAX_STATUS_TEXT, type EndStatus } from './end-frame.js';
export { LivenessSweeper, livenessWindowMs, DEFAULT_LIVENESS_PERIODS, MIN_LIVENESS_MS, type LiveSession } from './liveness.js';
export { SnapshotTransfers, pieces, pieceBytesFor, pullSnapshot, PIECE_OVERHEAD, type Piece, type ReceivedPiece } from './snapshot-pieces.js';
export { meteredCall, accepted } from './metering.js';
export { CallsInFlight } from './calls-in-flight.js';
