/**
 * For a bench that starts agents through the test helper: exits 2 with the reason when the agent
 * user already runs so many threads that those agents' tasks would start cold or not at all
 * (test/helpers/agent-user.ts; a local gaxx fleet left running is the usual cause), instead of
 * printing figures of cold starts as if they were the agent's.
 */
import { agentUserRoom } from '../../test/helpers/agent-user.js';

export async function refuseCrowdedAgentUser(): Promise<void> {
  const why = await agentUserRoom();
  if (why === undefined) return;
  process.stderr.write(`bench: ${why}\n`);
  process.exit(2);
}
