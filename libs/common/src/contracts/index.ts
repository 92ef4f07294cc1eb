export * from './queue.contracts.js';
export * from './socket.contracts.js';
