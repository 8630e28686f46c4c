import type { ReleasedRecord } from '../ipam/model/cooling-record.js';
import type { Assignment, AssignmentRead } from '../ipam/model/records.js';
import type { AddressRecords } from '../ipam/ports.js';
import type { Subnet } from '../net/address.js';
import { DEFAULT_PAGE_SIZE, type EtcdIo, type Write } from './etcd-io.js';
import { addressOfKey, type IpamKeys, prefixEnd } from './keys.js';
import { decodeAssignment, decodeReleased, encodeIndexEntry } from './records.js';

/** The addr and rel keys of the pools: listing and counting container assignments, owner updates. */
export class EtcdAddressRecords implements AddressRecords {
  constructor(
    private readonly io: EtcdIo,
    private readonly keys: IpamKeys,
    private readonly pageSize = DEFAULT_PAGE_SIZE,
  ) {}

  /** Paged (see EtcdIo.readPaged): a pool of any size lists without one reply over gRPC's message cap. */
  async list(subnet: Subnet): Promise<{ address: string; read: AssignmentRead }[]> {
    const prefix = this.keys.addrPrefix(subnet);
    const snap = await this.io.readPaged(prefix, prefixEnd(prefix), this.pageSize);
    return [...snap.kvs.values()].map((kv) => ({
      address: addressOfKey(prefix, kv.key),
      read: decodeAssignment(kv.value),
    }));
  }

  async *pages(subnet: Subnet): AsyncGenerator<{ address: string; read: AssignmentRead }[]> {
    const prefix = this.keys.addrPrefix(subnet);
    for await (const page of this.io.pages(prefix, prefixEnd(prefix), this.pageSize))
      yield page.map((kv) => ({ address: addressOfKey(prefix, kv.key), read: decodeAssignment(kv.value) }));
  }

  async readMany(subnet: Subnet, addresses: readonly string[]): Promise<Map<string, AssignmentRead>> {
    const snap = await this.io.read(addresses.map((a) => this.keys.addr(subnet, a)));
    const out = new Map<string, AssignmentRead>();
    for (const a of addresses) {
      const kv = snap.kvs.get(this.keys.addr(subnet, a));
      if (kv) out.set(a, decodeAssignment(kv.value));
    }
    return out;
  }

  async count(subnet: Subnet): Promise<number> {
    const prefix = this.keys.addrPrefix(subnet);
    return (await this.io.readRange(prefix, prefixEnd(prefix), { countOnly: true })).count;
  }

  async listReleased(subnet: Subnet): Promise<{ address: string; record: ReleasedRecord }[]> {
    const prefix = this.keys.releasedPrefix(subnet);
    const snap = await this.io.readPaged(prefix, prefixEnd(prefix), this.pageSize);
    const out: { address: string; record: ReleasedRecord }[] = [];
    for (const kv of snap.kvs.values()) {
      const record = decodeReleased(kv.value);
      if (record) out.push({ address: addressOfKey(prefix, kv.key), record });
    }
    return out;
  }

  async updateHeld(
    subnet: Subnet,
    address: string,
    decide: (read: AssignmentRead | undefined) => Assignment | undefined,
  ): Promise<'written' | 'unchanged' | 'conflict'> {
    const key = this.keys.addr(subnet, address);
    const kv = (await this.io.read([key])).kvs.get(key);
    const read = kv ? decodeAssignment(kv.value) : undefined;
    const next = decide(read);
    if (next === undefined || kv === undefined) return 'unchanged';
    const w: Write = {
      expect: [{ key, modRevision: kv.modRevision }],
      puts: [{ key, value: JSON.stringify(next) }],
      deletes: [],
    };
    // The host index entry follows a record whose holder, pool or time changed (an owner update changes none).
    const before = read === 'unreadable' || read === undefined ? undefined : read.assignment;
    if (before === undefined || encodeIndexEntry(before) !== encodeIndexEntry(next) || before.hostId !== next.hostId) {
      // etcd refuses a txn that deletes and puts one key: the old entry goes only when the holder changed.
      if (before !== undefined && before.hostId !== next.hostId)
        w.deletes?.push(this.keys.hostAddr(before.hostId, subnet, address));
      w.puts.push({ key: this.keys.hostAddr(next.hostId, subnet, address), value: encodeIndexEntry(next) });
    }
    return (await this.io.write(w)) ? 'written' : 'conflict';
  }
}
