/**
 * The framed-session core on its own (shared/transport/framed-session/): a session's two ends over a link
 * made of arrays, the inbox, end frames, snapshot pieces, metering and the liveness sweeper. The transports
 * built on it (in memory, NATS) have their own tests; these pin what any new link gets for free.
 */
import { describe, expect, it } from 'vitest';
import { getCodecs } from '../../../shared/transport/codecs.js';
import { TransportError } from '../../../shared/transport/errors.js';
import {
  CallsInFlight,
  FramedClientSession,
  FramedServerSession,
  LivenessSweeper,
  SessionInbox,
  SessionTable,
  SnapshotTransfers,
  endStatus,
  errorOfStatus,
  livenessWindowMs,
  meteredCall,
  pieceBytesFor,
  pullSnapshot,
} from '../../../shared/transport/framed-session/index.js';
import type { AgentMessage, CoordinatorMessage, SnapshotChunk } from '../../../shared/transport/messages.js';
import { TrafficMeter } from '../../../shared/transport/traffic-meter.js';
import type { StreamListener } from '../../../shared/transport/transport.js';

interface Heard<T> {
  messages: T[];
  invalid: string[];
  closed: Array<TransportError | undefined>;
}

function recorder<T>(): StreamListener<T> & { heard: Heard<T> } {
  const heard: Heard<T> = { messages: [], invalid: [], closed: [] };
  return { heard, message: (m) => heard.messages.push(m), invalid: (e) => heard.invalid.push(e.code), closed: (e) => heard.closed.push(e) };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  if (!check()) throw new Error(`never: ${what}`);
}

/** A server end whose link records what it sends. */
class ArrayServerSession extends FramedServerSession {
  sent: CoordinatorMessage[] = [];
  ends: Array<TransportError | undefined> = [];
  forgottenCount = 0;
  protected sendFrame(message: CoordinatorMessage): boolean {
    this.sent.push(message);
    return true;
  }
  protected sendEndFrame(error: TransportError | undefined): void {
    this.ends.push(error);
  }
  protected forgotten(): void {
    this.forgottenCount++;
  }
}

/** A client end whose link records its uplink frames. */
class ArrayClientSession extends FramedClientSession {
  frames: Uint8Array[] = [];
  ends: TransportError[] = [];
  forgottenCount = 0;
  constructor(listener: StreamListener<CoordinatorMessage>, maxBytes: number, livenessMs?: number) {
    super(listener, maxBytes, livenessMs);
  }
  open(): boolean {
    return this.opened();
  }
  protected sendFrame(bytes: Uint8Array): boolean {
    this.frames.push(bytes);
    return true;
  }
  protected sendEndFrame(error: TransportError): void {
    this.ends.push(error);
  }
  protected forgotten(): void {
    this.forgottenCount++;
  }
}

const info = { agentId: 'agent-1', token: 't', peer: 'test' };
const encodeUp = (m: AgentMessage): Uint8Array => getCodecs().agentMessage.encode(m);
const encodeDown = (m: CoordinatorMessage): Uint8Array => getCodecs().coordinatorMessage.encode(m);

describe('framed-session core', () => {
  it('an inbox holds what arrives until a listener attaches, reports undecodable frames as invalid, and its end once', () => {
    const inbox = new SessionInbox<AgentMessage>();
    const decode = (b: Uint8Array): AgentMessage => getCodecs().agentMessage.decode(b);
    inbox.receive(encodeUp({ kind: 'pong', nonce: 1 }), decode);
    inbox.receive(Uint8Array.of(0xff, 0xff, 0xff), decode);
    inbox.receive(encodeUp({ kind: 'pong', nonce: 2 }), decode);
    const listener = recorder<AgentMessage>();
    inbox.attach(listener);
    expect(listener.heard.messages).toEqual([{ kind: 'pong', nonce: 1 }, { kind: 'pong', nonce: 2 }]);
    expect(listener.heard.invalid).toHaveLength(1);
    const end = new TransportError('CANCELLED', 'bye');
    expect(inbox.finish(end)).toBe(true);
    expect(inbox.finish()).toBe(false);
    inbox.message({ kind: 'pong', nonce: 3 });
    expect(listener.heard.closed).toEqual([end]);
    expect(listener.heard.messages).toHaveLength(2);

    // Ended before anyone listened: the end alone is reported; a discarded inbox reports nothing.
    const early = new SessionInbox<AgentMessage>();
    early.message({ kind: 'pong', nonce: 1 });
    early.finish();
    const late = recorder<AgentMessage>();
    early.attach(late);
    expect(late.heard).toEqual({ messages: [], invalid: [], closed: [undefined] });
    const refused = new SessionInbox<AgentMessage>();
    refused.discard();
    const none = recorder<AgentMessage>();
    refused.attach(none);
    expect(none.heard.closed).toEqual([]);
  });

  it('a server end decodes uplink in order, refuses to send once ended, sends one end frame, and a refused one reports nothing', () => {
    const session = new ArrayServerSession(info, 's1', 1);
    session.receive(encodeUp({ kind: 'pong', nonce: 7 }));
    const listener = recorder<AgentMessage>();
    session.listen(listener);
    expect(listener.heard.messages).toEqual([{ kind: 'pong', nonce: 7 }]);
    expect(session.send({ kind: 'ping', nonce: 1 })).toBe(true);
    const error = new TransportError('UNAVAILABLE', 'shutting down');
    session.end(error);
    session.end();
    expect(session.send({ kind: 'ping', nonce: 2 })).toBe(false);
    expect(session.sent).toEqual([{ kind: 'ping', nonce: 1 }]);
    expect(session.ends).toEqual([error]);
    expect(listener.heard.closed).toEqual([error]);
    expect(session.forgottenCount).toBe(1);

    const refused = new ArrayServerSession(info, 's2', 2);
    const quiet = recorder<AgentMessage>();
    refused.listen(quiet);
    refused.refuse();
    refused.finish(new TransportError('CANCELLED', 'late'));
    expect(quiet.heard.closed).toEqual([]);
    expect(refused.ends).toEqual([]);
    expect(refused.forgottenCount).toBe(1);
  });

  it('a client end holds uplink until the open is answered, ends an oversized message with RESOURCE_EXHAUSTED, and reports its end once, later', async () => {
    const listener = recorder<CoordinatorMessage>();
    const session = new ArrayClientSession(listener, 200);
    session.send({ kind: 'pong', nonce: 1 });
    session.send({ kind: 'pong', nonce: 2 });
    expect(session.frames).toHaveLength(0);
    expect(session.open()).toBe(true);
    expect(session.frames.map((b) => getCodecs().agentMessage.decode(b))).toEqual([{ kind: 'pong', nonce: 1 }, { kind: 'pong', nonce: 2 }]);

    session.receive(encodeDown({ kind: 'ping', nonce: 5 }));
    session.receive(Uint8Array.of(0xff, 0xff));
    expect(listener.heard.messages).toEqual([{ kind: 'ping', nonce: 5 }]);
    expect(listener.heard.invalid).toHaveLength(1);

    const big: AgentMessage = { kind: 'result', result: { round: 0, attempt: 0, seeds: Array.from({ length: 100 }, (_, i) => BigInt(i) << 40n), g: [], lossPlus: [], lossMinus: [], sampleCount: 1 } };
    expect(session.send(big)).toBe(true);
    expect(session.ends.map((e) => e.code)).toEqual(['RESOURCE_EXHAUSTED']);
    expect(session.closed).toBe(true);
    expect(session.send({ kind: 'pong', nonce: 3 })).toBe(false);
    session.abort(new TransportError('CANCELLED', 'again'));
    // Reported on a later turn, as gRPC reports a stream's end, and only once.
    expect(listener.heard.closed).toEqual([]);
    await turn();
    expect(listener.heard.closed.map((e) => e?.code)).toEqual(['RESOURCE_EXHAUSTED']);
    expect(session.forgottenCount).toBe(1);
  });

  it('a session table refuses a second session under one id and a stale session never removes its successor', () => {
    const table = new SessionTable<ArrayServerSession>();
    const first = new ArrayServerSession(info, 'x', 1);
    table.add(first);
    expect(() => table.add(new ArrayServerSession(info, 'x', 2))).toThrow(expect.objectContaining({ code: 'ALREADY_EXISTS' }));
    table.delete(first);
    const second = new ArrayServerSession(info, 'x', 3);
    table.add(second);
    table.delete(first);
    expect(table.get('x')).toBe(second);
    expect(table.all()).toEqual([second]);
  });

  it('end frames carry a status name and one line of text; anything else reads as UNKNOWN', () => {
    expect(endStatus(undefined)).toEqual({ status: 'OK' });
    const status = endStatus(new TransportError('RESOURCE_EXHAUSTED', 'too\r\nbig'.padEnd(3000, '!')));
    expect(status.status).toBe('RESOURCE_EXHAUSTED');
    expect(status.message).toMatch(/^too big!+$/);
    expect(status.message).toHaveLength(1000);
    expect(errorOfStatus('OK', 'ignored')).toBeUndefined();
    expect(errorOfStatus(undefined, undefined)).toBeUndefined();
    expect(errorOfStatus('NOT_FOUND', '')).toMatchObject({ code: 'NOT_FOUND', message: 'coordinator replied NOT_FOUND' });
    expect(errorOfStatus('NO_SUCH_STATUS', 'x')).toMatchObject({ code: 'UNKNOWN', message: 'x' });
  });

  it('cuts a snapshot into pieces that a pull reassembles, keeps transfers per agent, and cancels an abandoned pull', async () => {
    const pieceBytes = pieceBytesFor(1024 + 40);
    expect(pieceBytes).toBe(40);
    expect(pieceBytesFor(10)).toBe(4);
    const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const chunks: SnapshotChunk[] = [
      { version: 3, entryHash: 'ab'.repeat(32), weightsSha256: 'cd'.repeat(32), offset: 0, totalBytes: 112, data: data.subarray(0, 100) },
      { version: 3, entryHash: 'ab'.repeat(32), weightsSha256: 'cd'.repeat(32), offset: 100, totalBytes: 112, data: Buffer.alloc(12, 7) },
    ];
    let ids = 0;
    const transfers = new SnapshotTransfers(60_000, () => `t${++ids}`);
    const first = transfers.start('agent-1', chunks, pieceBytes);
    expect(first).toMatchObject({ transferId: 't1', more: true });
    expect(() => transfers.next('t1', 'agent-2')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    const got: SnapshotChunk[] = [first.piece];
    for (let piece = first; piece.more; ) {
      piece = transfers.next('t1', 'agent-1');
      got.push(piece.piece);
    }
    expect(got.map((c) => [c.offset, c.data.length])).toEqual([[0, 40], [40, 40], [80, 20], [100, 12]]);
    expect(Buffer.concat(got.map((c) => c.data))).toEqual(Buffer.concat([data, Buffer.alloc(12, 7)]));
    // Done: the id is gone.
    expect(() => transfers.check('t1', 'agent-1')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(() => transfers.start('agent-1', [], pieceBytes)).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));

    // The agent side: a pull abandoned after its first piece cancels the transfer, which the coordinator drops.
    const cancelled: string[] = [];
    const asReceived = (p: { transferId: string; piece: SnapshotChunk; more: boolean }) => ({ bytes: getCodecs().snapshotChunk.encode(p.piece), transferId: p.transferId, more: p.more });
    const pull = pullSnapshot(
      async () => asReceived(transfers.start('agent-1', chunks, pieceBytes)),
      async (id) => asReceived(transfers.next(id, 'agent-1')),
      (id) => {
        cancelled.push(id);
        transfers.end(id);
      },
      (bytes) => getCodecs().snapshotChunk.decode(bytes),
    );
    for await (const chunk of pull) {
      expect(chunk.offset).toBe(0);
      break;
    }
    expect(cancelled).toEqual(['t2']);
    expect(() => transfers.check('t2', 'agent-1')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    transfers.endAll();
  });

  it('meters a call for its agent only once accepted; a refused call goes to the refused total', async () => {
    const meter = new TrafficMeter();
    await expect(meteredCall(meter, () => 'mallory', 30, async () => Promise.reject(new TransportError('UNAUTHENTICATED', 'no')))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(meteredCall(meter, () => 'agent-1', 12, async () => 'ok')).resolves.toBe('ok');
    expect([...meter.snapshot()]).toEqual([['agent-1', { bytesUp: 12, bytesDown: 0 }]]);
    expect(meter.refused()).toEqual({ calls: 1, bytesUp: 30 });
  });

  it('ends a session that hears nothing within its liveness window with UNAVAILABLE', async () => {
    expect(livenessWindowMs(0)).toBe(10_000);
    expect(livenessWindowMs(100)).toBe(1000);
    expect(livenessWindowMs(1000, 3)).toBe(3000);
    expect(livenessWindowMs(1000, 3, 50)).toBe(50);
    const listener = recorder<CoordinatorMessage>();
    const silent = new ArrayClientSession(listener, 1000, 30);
    silent.open();
    const sweeper = new LivenessSweeper(() => (silent.closed ? [] : [silent]));
    sweeper.watch(Infinity);
    sweeper.watch(30);
    try {
      await until(() => listener.heard.closed.length > 0, 'the silent session ends');
    } finally {
      sweeper.stop();
    }
    expect(listener.heard.closed[0]).toMatchObject({ code: 'UNAVAILABLE' });
    expect(silent.ends.map((e) => e.code)).toEqual(['UNAVAILABLE']);
  });

  it('a closing listener waits for calls in flight, or for its grace period when one never ends', async () => {
    const calls = new CallsInFlight();
    let release!: () => void;
    calls.track(() => new Promise<void>((resolve) => (release = resolve)));
    calls.track(async () => Promise.reject(new Error('a failed call settles too')));
    let settled = false;
    const waiting = calls.settle(60_000).then(() => (settled = true));
    await turn();
    expect(calls.size).toBe(1);
    expect(settled).toBe(false);
    release();
    await waiting;
    expect(calls.size).toBe(0);

    calls.track(() => new Promise<void>(() => undefined));
    await calls.settle(1);
    expect(calls.size).toBe(1);
  });
});
