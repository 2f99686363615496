export * from './reader.js';
export * from './servers.js';
export * from './wait.js';
