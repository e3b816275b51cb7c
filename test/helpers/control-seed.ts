// Shared setup for tests and benches that fill a control store directly: a
// seeded PRNG (so a failing random run replays), random public keys, a scratch
// directory on tmpfs where there is one, and a node inserted with every field
// a test does not care about at a plain default.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocateAddresses, ipv6Prefix } from '../../src/control/addresses.js';
import { createAuthKey } from '../../src/control/authkeys.js';
import { Registry } from '../../src/control/registry.js';
import type { ControlStore, NewNode, NodeRecord, StoreTx } from '../../src/control/store.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';

/** mulberry32: a small seeded PRNG, so a failure replays with the same seed; values in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The text of a fresh random public key (a node or disco key nobody holds the private half of). */
export const randomKeyText = (): string => keyToText(publicKeyOf(generatePrivateKey()));

/**
 * A new temporary directory, on /dev/shm where it exists: stores that commit
 * hundreds of times would otherwise wait on a disk's fsync for each.
 */
export const scratchDir = (prefix: string): string => mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), prefix));

/** What `insertTestNode` needs; everything else of the node may be overridden. */
export type TestNode = Partial<NewNode> & Pick<NewNode, 'authKeyId'>;

/**
 * Inserts node number `i` (hostname `n<i>`, an endpoint in 198.18.0.0/15, the
 * next free addresses, random keys, offline, no owner or tags unless given).
 */
export async function insertTestNode(store: StoreTx, i: number, node: TestNode): Promise<NodeRecord> {
  return store.insertNode({
    nodeKey: randomKeyText(),
    discoKey: randomKeyText(),
    hostname: `n${i}`,
    requestedHostname: `n${i}`,
    os: 'linux',
    version: 'test',
    ...(await allocateAddresses(store)),
    endpoints: [`198.18.${(i >> 8) & 255}.${i & 255}:41641`],
    homeRelay: null,
    ephemeral: false,
    createdAtMs: 0,
    lastSeenMs: null,
    keyExpiresAtMs: null,
    connected: false,
    ...node,
  });
}

/**
 * A registry on `raw` (no key expiry) with a reusable auth key for test nodes
 * and the network's IPv6 prefix made. Write through `reg.store`, so the
 * registry's cache (what snapshots read) follows every change.
 */
export async function openTestRegistry(raw: ControlStore): Promise<{ reg: Registry; authKeyId: string }> {
  const reg = await Registry.open(raw, { keyExpiryMs: null });
  const authKeyId = (await createAuthKey(reg.store, { reusable: true, ephemeral: false, expiryMs: null })).record.id;
  await ipv6Prefix(reg.store);
  return { reg, authKeyId };
}
