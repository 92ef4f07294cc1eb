/** Environment the crypto worker runs with (see runtime-env.mjs). */
export declare const WORKER_ENV: Readonly<Record<string, string>>;
/** Environment the gateway runs with (see runtime-env.mjs). */
export declare const GATEWAY_ENV: Readonly<Record<string, string>>;
/** Node flags the gateway runs with that NODE_OPTIONS does not accept (see runtime-env.mjs). */
export declare const GATEWAY_NODE_ARGS: readonly string[];
