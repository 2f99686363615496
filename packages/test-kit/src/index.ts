export * from './reader.js';
export * from './chromium.js';
export * from './http2.js';
export * from './memory-sink.js';
export * from './servers.js';
export * from './wait.js';
export * from './nginx.js';
