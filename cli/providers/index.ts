/** cli/providers: the fleet backends behind one interface (types.ts) and their registry. */
export { fleetTag, hasFleetTag } from './types.js';
export type {
  CallOptions,
  Clock,
  CreateRequest,
  DestroyOutcome,
  Instance,
  InstanceStatus,
  InventoryClaims,
  Provider,
  ProviderCapabilities,
  ProviderFactory,
  ProviderSettings,
} from './types.js';
export { isProviderName, loadProvider, providerNames, reportsLocally } from './registry.js';
export { scaledClock, systemClock } from './pacer.js';
