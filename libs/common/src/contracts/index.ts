export * from './socket.contracts.js';
