/**
 * A fake cloud's backend whose instances are real sshd test hosts applying the user data gaxx
 * sent; `hosts` maps each live instance id to its host (stopped when the instance is deleted).
 */
import type { InstanceBackend } from './fake-cloud.js';
import { startTestHost, type TestHost } from './test-host.js';

export function testHostBackend(): { backend: InstanceBackend; hosts: Map<string, TestHost> } {
  const hosts = new Map<string, TestHost>();
  const backend: InstanceBackend = {
    onCreate: async (i) => {
      const h = await startTestHost({ userData: i.userData ?? '' });
      hosts.set(i.id, h);
      return { ipv4: h.address };
    },
    onDelete: async (id) => {
      await hosts.get(id)?.stop();
      hosts.delete(id);
    },
  };
  return { backend, hosts };
}
