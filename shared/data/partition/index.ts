/**
 * Federated partitioners: seeded, deterministic splits of one dataset across agents (IID, Dirichlet label
 * skew, label shards) and per-agent feature shift for images. Each example goes to at most one agent.
 */
export { agentDatasets, checkPartition, makePartition, positionsByClass } from './partition.js';
export type { BasePartitionOptions, Partition } from './partition.js';
export { partitionIid } from './iid.js';
export type { IidOptions } from './iid.js';
export { partitionDirichlet } from './dirichlet.js';
export type { DirichletOptions } from './dirichlet.js';
export { partitionLabelShards } from './label-shards.js';
export type { LabelShardOptions } from './label-shards.js';
export { drawAgentShifts, shiftAgentFeatures, shiftExamples } from './feature-shift.js';
export type { AgentShift, FeatureShiftOptions, ShiftedAgents, ShiftParameter } from './feature-shift.js';
export { changeThickness, rotateBilinear } from './image-ops.js';
export { partitionStats } from './stats.js';
export type { PartitionStats } from './stats.js';
