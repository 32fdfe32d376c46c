/**
 * Metering of calls on a link, the same on every transport: a call's request bytes count for its agent only
 * once the coordinator accepted the call (a refused caller's claimed id is no one's: its bytes go to the
 * refused total), and response bytes count for the agent as they are sent (traffic-meter.ts keeps the counts).
 */
import type { TrafficMeter } from '../traffic-meter.js';

/**
 * Runs the coordinator's side of a call: `serve` resolving means accepted (the request counts for `agentId`),
 * rejecting means refused (counted in the refused total, and the rejection passed on).
 */
export async function meteredCall<T>(meter: TrafficMeter, agentId: () => string, bytesUp: number, serve: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await serve();
  } catch (err) {
    meter.refuse(bytesUp);
    throw err;
  }
  accepted(meter, agentId(), bytesUp);
  return result;
}

/** The coordinator accepted a call of `agentId` (a session open, say) with `bytesUp` request bytes. */
export function accepted(meter: TrafficMeter, agentId: string, bytesUp: number): void {
  meter.admit(agentId);
  meter.up(agentId, bytesUp);
}
