export { createNatsBackplane, type NatsBackplaneOptions } from './backplane.js';
export { NatsBackplaneError } from './error.js';
