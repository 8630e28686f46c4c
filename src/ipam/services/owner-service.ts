import { addressAt, parseAddress, type Subnet, subnetContains } from '../../net/address.js';
import { type OwnerPatch, withOwner } from '../core/owners.js';
import type { AddressRecords, PoolRepository } from '../ports.js';

const ATTEMPTS = 5;

/**
 * Writes who holds an address into its record (endpoint, network, container), one compare-and-swap retried on
 * conflict. Called after the plugin reply, never in its path; a lost update leaves the record without the owner
 * and changes nothing else.
 */
export class OwnerService {
  private subnets: Subnet[] = [];

  constructor(
    private readonly pools: PoolRepository,
    private readonly addresses: AddressRecords,
    private readonly hostId: string,
  ) {}

  private async subnetOf(text: string): Promise<Subnet | undefined> {
    const a = parseAddress(text.split('/')[0] ?? '');
    const find = (): Subnet | undefined => this.subnets.find((s) => subnetContains(s, a.family, a.value));
    const known = find();
    if (known) return known;
    this.subnets = await this.pools.listSubnets();
    return find();
  }

  /** 'written', 'unchanged' (nothing to add, or not this host's holder), or 'no-pool'. */
  async record(address: string, patch: OwnerPatch): Promise<'written' | 'unchanged' | 'no-pool'> {
    const subnet = await this.subnetOf(address);
    if (!subnet) return 'no-pool';
    // The addr key holds the canonical text (IPv6 written many ways).
    const bare = addressAt(subnet, parseAddress(address.split('/')[0] ?? '').value - subnet.network);
    for (let n = 0; n < ATTEMPTS; n++) {
      const out = await this.addresses.updateHeld(subnet, bare, (read) => withOwner(read, this.hostId, patch));
      if (out !== 'conflict') return out;
    }
    return 'unchanged';
  }
}
