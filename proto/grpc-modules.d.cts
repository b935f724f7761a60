/** Types of grpc-modules.cjs: grpc-js and proto-loader, each loaded when first read. */
export declare function grpcModules(): { grpc: typeof import('@grpc/grpc-js'); protoLoader: typeof import('@grpc/proto-loader') };
