/**
 * The edge agent as a library (docs/embedding.md): `startAgent(options)` (or an Agent) joins a coordinator over
 * any Transport, catches up, evaluates its tasks on local data and follows the update log; the middleware chain
 * around each task's evaluation (AgentInit.evaluation); the model backends it runs on (in process or on a worker
 * thread); the device budget that lets it decline what does not fit; and local MeZO training.
 */
export {
  Agent,
  AgentStateError,
  CoordinatorUnreachableError,
  SnapshotRejectedError,
  chooseCatchUp,
  type AgentExit,
  type AgentHealth,
  type AgentInit,
  type AgentState,
  type CatchUpPath,
  type CatchUpRecord,
} from './agent.js';
export { startAgent, type StartAgentOptions, type AgentHandle } from './start-agent.js';
export { composeEvaluation, evaluateOnBackend, type Evaluation, type EvaluationContext, type EvaluationMiddleware } from './evaluation.js';
export { serveAgentHealth, type AgentHealthServer, type AgentHealthServerOptions } from './health-server.js';
export { createAgentBackend, type AgentBackendOptions } from './agent-backend.js';
export { InProcessBackend, type BackendOptions, type DecayUpdate, type MezoBackend, type RestoreMode } from './mezo-backend.js';
export { WorkerBackend, WorkerBackendError, type WorkerBackendOptions } from './worker-backend.js';
export { DeviceBudget, DeviceBudgetError, loadPerCore, predictMezoPeak, type DeviceBudgetOptions } from './device-budget.js';
export { scoreDataset, type BatchRunner, type DatasetScore } from './dataset-evaluation.js';
export {
  trainLocal,
  localTrainOptionsSchema,
  decayRangesOf,
  stepSeeds,
  type CurvePoint,
  type LocalTrainInput,
  type LocalTrainOptions,
  type LocalTrainOptionsInput,
  type LocalTrainReport,
} from './local-trainer.js';
