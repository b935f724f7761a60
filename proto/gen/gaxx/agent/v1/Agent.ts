// Original file: gaxx/agent/v1/agent.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CancelRequest as _gaxx_agent_v1_CancelRequest, CancelRequest__Output as _gaxx_agent_v1_CancelRequest__Output } from '../../../gaxx/agent/v1/CancelRequest.js';
import type { CancelResponse as _gaxx_agent_v1_CancelResponse, CancelResponse__Output as _gaxx_agent_v1_CancelResponse__Output } from '../../../gaxx/agent/v1/CancelResponse.js';
import type { CreateCsrRequest as _gaxx_agent_v1_CreateCsrRequest, CreateCsrRequest__Output as _gaxx_agent_v1_CreateCsrRequest__Output } from '../../../gaxx/agent/v1/CreateCsrRequest.js';
import type { CreateCsrResponse as _gaxx_agent_v1_CreateCsrResponse, CreateCsrResponse__Output as _gaxx_agent_v1_CreateCsrResponse__Output } from '../../../gaxx/agent/v1/CreateCsrResponse.js';
import type { ExecEvent as _gaxx_agent_v1_ExecEvent, ExecEvent__Output as _gaxx_agent_v1_ExecEvent__Output } from '../../../gaxx/agent/v1/ExecEvent.js';
import type { ExecRequest as _gaxx_agent_v1_ExecRequest, ExecRequest__Output as _gaxx_agent_v1_ExecRequest__Output } from '../../../gaxx/agent/v1/ExecRequest.js';
import type { GetFileChunk as _gaxx_agent_v1_GetFileChunk, GetFileChunk__Output as _gaxx_agent_v1_GetFileChunk__Output } from '../../../gaxx/agent/v1/GetFileChunk.js';
import type { GetFileRequest as _gaxx_agent_v1_GetFileRequest, GetFileRequest__Output as _gaxx_agent_v1_GetFileRequest__Output } from '../../../gaxx/agent/v1/GetFileRequest.js';
import type { InfoRequest as _gaxx_agent_v1_InfoRequest, InfoRequest__Output as _gaxx_agent_v1_InfoRequest__Output } from '../../../gaxx/agent/v1/InfoRequest.js';
import type { InfoResponse as _gaxx_agent_v1_InfoResponse, InfoResponse__Output as _gaxx_agent_v1_InfoResponse__Output } from '../../../gaxx/agent/v1/InfoResponse.js';
import type { PutFileChunk as _gaxx_agent_v1_PutFileChunk, PutFileChunk__Output as _gaxx_agent_v1_PutFileChunk__Output } from '../../../gaxx/agent/v1/PutFileChunk.js';
import type { PutFileResponse as _gaxx_agent_v1_PutFileResponse, PutFileResponse__Output as _gaxx_agent_v1_PutFileResponse__Output } from '../../../gaxx/agent/v1/PutFileResponse.js';

export interface AgentClient extends grpc.Client {
  Cancel(argument: _gaxx_agent_v1_CancelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  Cancel(argument: _gaxx_agent_v1_CancelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gaxx_agent_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  Cancel(argument: _gaxx_agent_v1_CancelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  Cancel(argument: _gaxx_agent_v1_CancelRequest, callback: grpc.requestCallback<_gaxx_agent_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  cancel(argument: _gaxx_agent_v1_CancelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  cancel(argument: _gaxx_agent_v1_CancelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gaxx_agent_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  cancel(argument: _gaxx_agent_v1_CancelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  cancel(argument: _gaxx_agent_v1_CancelRequest, callback: grpc.requestCallback<_gaxx_agent_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  
  CreateCsr(argument: _gaxx_agent_v1_CreateCsrRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_CreateCsrResponse__Output>): grpc.ClientUnaryCall;
  CreateCsr(argument: _gaxx_agent_v1_CreateCsrRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gaxx_agent_v1_CreateCsrResponse__Output>): grpc.ClientUnaryCall;
  CreateCsr(argument: _gaxx_agent_v1_CreateCsrRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_CreateCsrResponse__Output>): grpc.ClientUnaryCall;
  CreateCsr(argument: _gaxx_agent_v1_CreateCsrRequest, callback: grpc.requestCallback<_gaxx_agent_v1_CreateCsrResponse__Output>): grpc.ClientUnaryCall;
  createCsr(argument: _gaxx_agent_v1_CreateCsrRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_CreateCsrResponse__Output>): grpc.ClientUnaryCall;
  createCsr(argument: _gaxx_agent_v1_CreateCsrRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gaxx_agent_v1_CreateCsrResponse__Output>): grpc.ClientUnaryCall;
  createCsr(argument: _gaxx_agent_v1_CreateCsrRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_CreateCsrResponse__Output>): grpc.ClientUnaryCall;
  createCsr(argument: _gaxx_agent_v1_CreateCsrRequest, callback: grpc.requestCallback<_gaxx_agent_v1_CreateCsrResponse__Output>): grpc.ClientUnaryCall;
  
  Exec(argument: _gaxx_agent_v1_ExecRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_gaxx_agent_v1_ExecEvent__Output>;
  Exec(argument: _gaxx_agent_v1_ExecRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_gaxx_agent_v1_ExecEvent__Output>;
  exec(argument: _gaxx_agent_v1_ExecRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_gaxx_agent_v1_ExecEvent__Output>;
  exec(argument: _gaxx_agent_v1_ExecRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_gaxx_agent_v1_ExecEvent__Output>;
  
  GetFile(argument: _gaxx_agent_v1_GetFileRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_gaxx_agent_v1_GetFileChunk__Output>;
  GetFile(argument: _gaxx_agent_v1_GetFileRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_gaxx_agent_v1_GetFileChunk__Output>;
  getFile(argument: _gaxx_agent_v1_GetFileRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_gaxx_agent_v1_GetFileChunk__Output>;
  getFile(argument: _gaxx_agent_v1_GetFileRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_gaxx_agent_v1_GetFileChunk__Output>;
  
  Info(argument: _gaxx_agent_v1_InfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_InfoResponse__Output>): grpc.ClientUnaryCall;
  Info(argument: _gaxx_agent_v1_InfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gaxx_agent_v1_InfoResponse__Output>): grpc.ClientUnaryCall;
  Info(argument: _gaxx_agent_v1_InfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_InfoResponse__Output>): grpc.ClientUnaryCall;
  Info(argument: _gaxx_agent_v1_InfoRequest, callback: grpc.requestCallback<_gaxx_agent_v1_InfoResponse__Output>): grpc.ClientUnaryCall;
  info(argument: _gaxx_agent_v1_InfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_InfoResponse__Output>): grpc.ClientUnaryCall;
  info(argument: _gaxx_agent_v1_InfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gaxx_agent_v1_InfoResponse__Output>): grpc.ClientUnaryCall;
  info(argument: _gaxx_agent_v1_InfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_InfoResponse__Output>): grpc.ClientUnaryCall;
  info(argument: _gaxx_agent_v1_InfoRequest, callback: grpc.requestCallback<_gaxx_agent_v1_InfoResponse__Output>): grpc.ClientUnaryCall;
  
  PutFile(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_PutFileResponse__Output>): grpc.ClientWritableStream<_gaxx_agent_v1_PutFileChunk>;
  PutFile(metadata: grpc.Metadata, callback: grpc.requestCallback<_gaxx_agent_v1_PutFileResponse__Output>): grpc.ClientWritableStream<_gaxx_agent_v1_PutFileChunk>;
  PutFile(options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_PutFileResponse__Output>): grpc.ClientWritableStream<_gaxx_agent_v1_PutFileChunk>;
  PutFile(callback: grpc.requestCallback<_gaxx_agent_v1_PutFileResponse__Output>): grpc.ClientWritableStream<_gaxx_agent_v1_PutFileChunk>;
  putFile(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_PutFileResponse__Output>): grpc.ClientWritableStream<_gaxx_agent_v1_PutFileChunk>;
  putFile(metadata: grpc.Metadata, callback: grpc.requestCallback<_gaxx_agent_v1_PutFileResponse__Output>): grpc.ClientWritableStream<_gaxx_agent_v1_PutFileChunk>;
  putFile(options: grpc.CallOptions, callback: grpc.requestCallback<_gaxx_agent_v1_PutFileResponse__Output>): grpc.ClientWritableStream<_gaxx_agent_v1_PutFileChunk>;
  putFile(callback: grpc.requestCallback<_gaxx_agent_v1_PutFileResponse__Output>): grpc.ClientWritableStream<_gaxx_agent_v1_PutFileChunk>;
  
}

export interface AgentHandlers extends grpc.UntypedServiceImplementation {
  Cancel: grpc.handleUnaryCall<_gaxx_agent_v1_CancelRequest__Output, _gaxx_agent_v1_CancelResponse>;
  
  CreateCsr: grpc.handleUnaryCall<_gaxx_agent_v1_CreateCsrRequest__Output, _gaxx_agent_v1_CreateCsrResponse>;
  
  Exec: grpc.handleServerStreamingCall<_gaxx_agent_v1_ExecRequest__Output, _gaxx_agent_v1_ExecEvent>;
  
  GetFile: grpc.handleServerStreamingCall<_gaxx_agent_v1_GetFileRequest__Output, _gaxx_agent_v1_GetFileChunk>;
  
  Info: grpc.handleUnaryCall<_gaxx_agent_v1_InfoRequest__Output, _gaxx_agent_v1_InfoResponse>;
  
  PutFile: grpc.handleClientStreamingCall<_gaxx_agent_v1_PutFileChunk__Output, _gaxx_agent_v1_PutFileResponse>;
  
}

export interface AgentDefinition extends grpc.ServiceDefinition {
  Cancel: MethodDefinition<_gaxx_agent_v1_CancelRequest, _gaxx_agent_v1_CancelResponse, _gaxx_agent_v1_CancelRequest__Output, _gaxx_agent_v1_CancelResponse__Output>
  CreateCsr: MethodDefinition<_gaxx_agent_v1_CreateCsrRequest, _gaxx_agent_v1_CreateCsrResponse, _gaxx_agent_v1_CreateCsrRequest__Output, _gaxx_agent_v1_CreateCsrResponse__Output>
  Exec: MethodDefinition<_gaxx_agent_v1_ExecRequest, _gaxx_agent_v1_ExecEvent, _gaxx_agent_v1_ExecRequest__Output, _gaxx_agent_v1_ExecEvent__Output>
  GetFile: MethodDefinition<_gaxx_agent_v1_GetFileRequest, _gaxx_agent_v1_GetFileChunk, _gaxx_agent_v1_GetFileRequest__Output, _gaxx_agent_v1_GetFileChunk__Output>
  Info: MethodDefinition<_gaxx_agent_v1_InfoRequest, _gaxx_agent_v1_InfoResponse, _gaxx_agent_v1_InfoRequest__Output, _gaxx_agent_v1_InfoResponse__Output>
  PutFile: MethodDefinition<_gaxx_agent_v1_PutFileChunk, _gaxx_agent_v1_PutFileResponse, _gaxx_agent_v1_PutFileChunk__Output, _gaxx_agent_v1_PutFileResponse__Output>
}
