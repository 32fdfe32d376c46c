export * from './coordinator.js';
export * from './options.js';
export * from './strategy.js';
export * from './dp-strategy.js';
export * from './export-model.js';
export * from './snapshot.js';
export * from './run-monitor.js';
export * from './run-record.js';
