/**
 * The RPC policy table is complete and is the only gate: every method of every service the agent
 * serves has an entry, and a method without one is denied to every role.
 */
import { describe, expect, it } from 'vitest';
import { createAuthorizer, RPC_POLICY } from '../../agent/auth/auth.js';
import { ROLES } from '../../certs/index.js';
import { isGaxxError, loadProtos } from '../../proto/index.js';

/** Every method path of the services the agent registers. */
function servedMethods(): string[] {
  const { agent, health } = loadProtos();
  const services = [agent.gaxx.agent.v1.Agent.service, health.grpc.health.v1.Health.service];
  return services.flatMap((svc) => Object.values(svc).map((m) => m.path));
}

describe('RPC policy table', () => {
  it('names every method the agent serves, and nothing else', () => {
    const served = servedMethods();
    expect(served.length).toBeGreaterThanOrEqual(7);
    expect(Object.keys(RPC_POLICY).sort()).toEqual([...served].sort());
  });

  it('gives the agent role nothing and monitors only Info and Health', () => {
    for (const [method, roles] of Object.entries(RPC_POLICY)) {
      expect(roles, method).not.toContain('agent');
      if (roles.includes('monitor')) expect(method).toMatch(/\/(Info|Check|Watch)$/);
    }
  });

  it('denies a method missing from the table to every role', () => {
    const denied: string[] = [];
    const auth = createAuthorizer(
      () => new Set(),
      (reason, rpc) => denied.push(`${reason} ${rpc}`),
    );
    const roles = ROLES.filter((r) => r !== 'agent');
    for (const role of roles) {
      // The two fields of a TLS-verified peer certificate that authorization reads.
      const cert = { subjectaltname: `URI:spiffe://gaxx/${role}/x`, serialNumber: '0A' };
      const call = { getAuthContext: () => ({ sslPeerCertificate: cert }) } as never;
      let code = '';
      try {
        auth.authorize(call, '/gaxx.agent.v1.Agent/NotInTheTable');
      } catch (e) {
        code = isGaxxError(e) ? e.code : 'not a GaxxError';
      }
      expect(code, role).toBe('PERMISSION_DENIED');
      // The same caller passes for a method its role has.
      expect(auth.authorize(call, '/gaxx.agent.v1.Agent/Info').role).toBe(role);
    }
    expect(denied).toHaveLength(roles.length);
  });
});
