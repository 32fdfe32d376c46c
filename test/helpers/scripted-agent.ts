/**
 * The agent side of the protocol without a model, for coordinator tests: joins over a transport, answers the
 * coordinator's pings, and hands each task to `onTask`, which decides what (if anything) to send back.
 */
import type { Capabilities, ClientSession, CoordinatorClient, CoordinatorMessage, JoinAccepted, Task, Transport } from '../../shared/transport/index.js';

export interface ScriptedAgentOptions {
  agentId: string;
  baseSha256: string;
  token?: string;
  /** Merged over { memoryBytes: 0, cores: 1, noiseImpl: 'js' }. */
  capabilities?: Partial<Capabilities>;
  /** Hears every message before pings and tasks are handled (for tests that record them). */
  onMessage?: (message: CoordinatorMessage) => void;
}

export interface JoinedScriptedAgent {
  client: CoordinatorClient;
  session: ClientSession;
  accepted: JoinAccepted;
}

export async function joinScriptedAgent(
  transport: Transport,
  options: ScriptedAgentOptions,
  onTask: (task: Task, session: ClientSession, client: CoordinatorClient) => void,
): Promise<JoinedScriptedAgent> {
  const { agentId, baseSha256, token = '' } = options;
  const client = transport.connect({ agentId, token });
  const capabilities = { memoryBytes: 0, cores: 1, noiseImpl: 'js' as const, ...options.capabilities };
  const accepted = await client.join({ agentId, token, capabilities, baseSha256, versionHeld: 0 });
  const session: ClientSession = client.session({
    message: (m) => {
      options.onMessage?.(m);
      if (m.kind === 'ping') session.send({ kind: 'pong', nonce: m.nonce });
      if (m.kind === 'task') onTask(m.task, session, client);
    },
    invalid: () => undefined,
    closed: () => undefined,
  });
  return { client, session, accepted };
}
