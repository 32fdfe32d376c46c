export { ConfigError, resolveConfig, type ConfigLayers, type EnvBinding } from './resolve-config.js';
