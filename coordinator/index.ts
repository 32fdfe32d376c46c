export * from './coordinator.js';
export * from './options.js';
export * from './strategy.js';
