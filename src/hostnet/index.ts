/** hostnet: the only code that changes links, addresses, routes and iptables. */
export { IpRunner, IpBatchError, type IpRunnerOptions } from './ip-runner.js';
export { ensureBridge, planBridgeTakeover, restoreBridge, type RestoreOptions, type TakeoverOptions } from './bridge.js';
export { ensureForwardAccept, removeForwardAccept, forwardAcceptRule } from './iptables.js';
export { createVeth, deleteVeth, type VethSpec } from './veth.js';
export { vethNames, isValidIfName, assertIfName, HOST_VETH_PREFIX, CONTAINER_VETH_PREFIX } from './names.js';
export { Announcer } from './announce.js';
