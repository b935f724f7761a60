/**
 * Before any test: refuses to start when the user test agents run as (nobody, when we are root)
 * already runs so many threads that their tasks could not start (see helpers/agent-user.ts): the
 * suite would fail all over, for a reason found only in the agents' logs. Said once, up front.
 */
import { agentUserRoom } from './helpers/agent-user.js';

export default async function setup(): Promise<void> {
  const why = await agentUserRoom();
  if (why) throw new Error(why);
}
