/** Types of grpc-modules.cjs: grpc-js and proto-loader, each loaded when first read. */
export declare function grpcModules(): { grpc: typeof import('@grpc/grpc-js'); protoLoader: typeof import('@grpc/proto-loader') };
/** Makes node:net's isIP and isIPv6 skip Node's IPv6 pattern for text without a colon, process-wide (same answers); returns node:net. */
export declare function colonFirstIpChecks(): typeof import('node:net');
