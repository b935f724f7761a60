import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AgentClient as _gaxx_agent_v1_AgentClient, AgentDefinition as _gaxx_agent_v1_AgentDefinition } from './gaxx/agent/v1/Agent.js';
import type { BlockedPeer as _gaxx_agent_v1_BlockedPeer, BlockedPeer__Output as _gaxx_agent_v1_BlockedPeer__Output } from './gaxx/agent/v1/BlockedPeer.js';
import type { CancelRequest as _gaxx_agent_v1_CancelRequest, CancelRequest__Output as _gaxx_agent_v1_CancelRequest__Output } from './gaxx/agent/v1/CancelRequest.js';
import type { CancelResponse as _gaxx_agent_v1_CancelResponse, CancelResponse__Output as _gaxx_agent_v1_CancelResponse__Output } from './gaxx/agent/v1/CancelResponse.js';
import type { CreateCsrRequest as _gaxx_agent_v1_CreateCsrRequest, CreateCsrRequest__Output as _gaxx_agent_v1_CreateCsrRequest__Output } from './gaxx/agent/v1/CreateCsrRequest.js';
import type { CreateCsrResponse as _gaxx_agent_v1_CreateCsrResponse, CreateCsrResponse__Output as _gaxx_agent_v1_CreateCsrResponse__Output } from './gaxx/agent/v1/CreateCsrResponse.js';
import type { ExecEvent as _gaxx_agent_v1_ExecEvent, ExecEvent__Output as _gaxx_agent_v1_ExecEvent__Output } from './gaxx/agent/v1/ExecEvent.js';
import type { ExecRequest as _gaxx_agent_v1_ExecRequest, ExecRequest__Output as _gaxx_agent_v1_ExecRequest__Output } from './gaxx/agent/v1/ExecRequest.js';
import type { Exit as _gaxx_agent_v1_Exit, Exit__Output as _gaxx_agent_v1_Exit__Output } from './gaxx/agent/v1/Exit.js';
import type { GetFileChunk as _gaxx_agent_v1_GetFileChunk, GetFileChunk__Output as _gaxx_agent_v1_GetFileChunk__Output } from './gaxx/agent/v1/GetFileChunk.js';
import type { GetFileHeader as _gaxx_agent_v1_GetFileHeader, GetFileHeader__Output as _gaxx_agent_v1_GetFileHeader__Output } from './gaxx/agent/v1/GetFileHeader.js';
import type { GetFileRequest as _gaxx_agent_v1_GetFileRequest, GetFileRequest__Output as _gaxx_agent_v1_GetFileRequest__Output } from './gaxx/agent/v1/GetFileRequest.js';
import type { InfoRequest as _gaxx_agent_v1_InfoRequest, InfoRequest__Output as _gaxx_agent_v1_InfoRequest__Output } from './gaxx/agent/v1/InfoRequest.js';
import type { InfoResponse as _gaxx_agent_v1_InfoResponse, InfoResponse__Output as _gaxx_agent_v1_InfoResponse__Output } from './gaxx/agent/v1/InfoResponse.js';
import type { PutFileChunk as _gaxx_agent_v1_PutFileChunk, PutFileChunk__Output as _gaxx_agent_v1_PutFileChunk__Output } from './gaxx/agent/v1/PutFileChunk.js';
import type { PutFileHeader as _gaxx_agent_v1_PutFileHeader, PutFileHeader__Output as _gaxx_agent_v1_PutFileHeader__Output } from './gaxx/agent/v1/PutFileHeader.js';
import type { PutFileResponse as _gaxx_agent_v1_PutFileResponse, PutFileResponse__Output as _gaxx_agent_v1_PutFileResponse__Output } from './gaxx/agent/v1/PutFileResponse.js';
import type { SignedTask as _gaxx_agent_v1_SignedTask, SignedTask__Output as _gaxx_agent_v1_SignedTask__Output } from './gaxx/agent/v1/SignedTask.js';
import type { Started as _gaxx_agent_v1_Started, Started__Output as _gaxx_agent_v1_Started__Output } from './gaxx/agent/v1/Started.js';
import type { TaskTarget as _gaxx_agent_v1_TaskTarget, TaskTarget__Output as _gaxx_agent_v1_TaskTarget__Output } from './gaxx/agent/v1/TaskTarget.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  gaxx: {
    agent: {
      v1: {
        Agent: SubtypeConstructor<typeof grpc.Client, _gaxx_agent_v1_AgentClient> & { service: _gaxx_agent_v1_AgentDefinition }
        BlockedPeer: MessageTypeDefinition<_gaxx_agent_v1_BlockedPeer, _gaxx_agent_v1_BlockedPeer__Output>
        CancelRequest: MessageTypeDefinition<_gaxx_agent_v1_CancelRequest, _gaxx_agent_v1_CancelRequest__Output>
        CancelResponse: MessageTypeDefinition<_gaxx_agent_v1_CancelResponse, _gaxx_agent_v1_CancelResponse__Output>
        CreateCsrRequest: MessageTypeDefinition<_gaxx_agent_v1_CreateCsrRequest, _gaxx_agent_v1_CreateCsrRequest__Output>
        CreateCsrResponse: MessageTypeDefinition<_gaxx_agent_v1_CreateCsrResponse, _gaxx_agent_v1_CreateCsrResponse__Output>
        ExecEvent: MessageTypeDefinition<_gaxx_agent_v1_ExecEvent, _gaxx_agent_v1_ExecEvent__Output>
        ExecRequest: MessageTypeDefinition<_gaxx_agent_v1_ExecRequest, _gaxx_agent_v1_ExecRequest__Output>
        Exit: MessageTypeDefinition<_gaxx_agent_v1_Exit, _gaxx_agent_v1_Exit__Output>
        FileArea: EnumTypeDefinition
        GetFileChunk: MessageTypeDefinition<_gaxx_agent_v1_GetFileChunk, _gaxx_agent_v1_GetFileChunk__Output>
        GetFileHeader: MessageTypeDefinition<_gaxx_agent_v1_GetFileHeader, _gaxx_agent_v1_GetFileHeader__Output>
        GetFileRequest: MessageTypeDefinition<_gaxx_agent_v1_GetFileRequest, _gaxx_agent_v1_GetFileRequest__Output>
        InfoRequest: MessageTypeDefinition<_gaxx_agent_v1_InfoRequest, _gaxx_agent_v1_InfoRequest__Output>
        InfoResponse: MessageTypeDefinition<_gaxx_agent_v1_InfoResponse, _gaxx_agent_v1_InfoResponse__Output>
        PutFileChunk: MessageTypeDefinition<_gaxx_agent_v1_PutFileChunk, _gaxx_agent_v1_PutFileChunk__Output>
        PutFileHeader: MessageTypeDefinition<_gaxx_agent_v1_PutFileHeader, _gaxx_agent_v1_PutFileHeader__Output>
        PutFileResponse: MessageTypeDefinition<_gaxx_agent_v1_PutFileResponse, _gaxx_agent_v1_PutFileResponse__Output>
        SignedTask: MessageTypeDefinition<_gaxx_agent_v1_SignedTask, _gaxx_agent_v1_SignedTask__Output>
        Started: MessageTypeDefinition<_gaxx_agent_v1_Started, _gaxx_agent_v1_Started__Output>
        TaskTarget: MessageTypeDefinition<_gaxx_agent_v1_TaskTarget, _gaxx_agent_v1_TaskTarget__Output>
      }
    }
  }
}

