import type { AssignmentRead } from '../ipam/model/records.js';
import type { AddressRecords } from '../ipam/ports.js';
import type { Subnet } from '../net/address.js';
import type { EtcdIo } from './etcd-io.js';
import { addressOfKey, type IpamKeys, prefixEnd } from './keys.js';
import { decodeAssignment } from './records.js';

/** The addr keys of the pools: listing and counting container assignments. */
export class EtcdAddressRecords implements AddressRecords {
  constructor(
    private readonly io: EtcdIo,
    private readonly keys: IpamKeys,
  ) {}

  async list(subnet: Subnet): Promise<{ address: string; read: AssignmentRead }[]> {
    const prefix = this.keys.addrPrefix(subnet);
    const snap = await this.io.readRange(prefix, prefixEnd(prefix));
    return [...snap.kvs.values()].map((kv) => ({ address: addressOfKey(prefix, kv.key), read: decodeAssignment(kv.value) }));
  }

  async count(subnet: Subnet): Promise<number> {
    const prefix = this.keys.addrPrefix(subnet);
    return (await this.io.readRange(prefix, prefixEnd(prefix), { countOnly: true })).count;
  }
}
