/** The open sessions of one side of a link, by session id, so a frame finds its session and a shutdown ends them all. */
import { TransportError } from '../errors.js';

export class SessionTable<S extends { readonly id: string }> {
  private readonly byId = new Map<string, S>();

  get size(): number {
    return this.byId.size;
  }

  get(id: string): S | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Adds a session; an id already open is refused (ALREADY_EXISTS), so one session cannot be opened twice. */
  add(session: S): void {
    if (this.byId.has(session.id)) throw new TransportError('ALREADY_EXISTS', `session ${session.id} is already open`);
    this.byId.set(session.id, session);
  }

  /** Removes `session` if it is the one under its id (a stale session never removes its successor). */
  delete(session: S): void {
    if (this.byId.get(session.id) === session) this.byId.delete(session.id);
  }

  /** A copy, so ending sessions while iterating is safe. */
  all(): S[] {
    return [...this.byId.values()];
  }
}
