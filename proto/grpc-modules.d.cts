/** Types of grpc-modules.cjs: grpc-js and proto-loader, loaded on the first call. */
export declare function grpcModules(): { grpc: typeof import('@grpc/grpc-js'); protoLoader: typeof import('@grpc/proto-loader') };
