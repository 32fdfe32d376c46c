/**
 * Strategies as a library (docs/embedding.md): the Strategy interface the coordinator's round loop calls, the
 * default MezoStrategy with its aggregation helpers, the central-DP wrapper and the Rényi-DP accountant behind
 * it, and what a strategy implements to run under secure aggregation (SecureSumStrategy). Its own entry so that code writing a strategy need not import the coordinator's service.
 */
export * from './strategy.js';
export * from './dp-strategy.js';
export * from './secure-aggregation.js';
export * from '../shared/privacy/rdp-accountant.js';
