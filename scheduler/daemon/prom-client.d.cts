/** Types of prom-client.cjs: prom-client, loaded on the first call. */
export declare function promClient(): typeof import('prom-client');
