/** hostnet: the only code that changes links, addresses, routes and iptables. */
export { IpRunner, IpBatchError, type IpRunnerOptions } from './ip-runner.js';
export {
  ensureBridge,
  planBridgeTakeover,
  restoreBridge,
  type RestoreOptions,
  type RestoreResult,
  type TakeoverOptions,
} from './bridge.js';
export { bridgeNic, nicPorts, portsOf } from './bridge-ports.js';
export { execArgs, onPath, type ExecOptions, type ExecResult } from './exec.js';
export { ensureForwardAccept, removeForwardAccept, forwardAcceptRule } from './iptables.js';
export { createVeth, deleteVeth, type VethSpec } from './veth.js';
export {
  vethNames,
  isFlatnetVeth,
  isValidIfName,
  assertIfName,
  HOST_VETH_PREFIX,
  CONTAINER_VETH_PREFIX,
} from './names.js';
export { Announcer } from './announce.js';
