// Relays of one region mesh: each connects to the others as a mesh client
// (authenticated to them by the shared mesh key), watches which nodes are
// connected there, and forwards packets for those nodes. A node reached through
// any relay of the region gets the packet. The mesh key goes only to a relay
// whose certificate matches the pinned fingerprint (or, without a pin, one a
// CA vouches for), so a man in the middle never learns it.
import { generatePrivateKey } from '../crypto/x25519.js';
import { RelayClient } from './client.js';
import { FrameType, frame } from './frames.js';
import type { MeshPeer } from './mesh-peer.js';

export type { MeshPeer } from './mesh-peer.js';

/**
 * Nodes known to be on the region's other relays, at most: ~100 bytes each, so
 * ~6 MiB. Mesh peers hold the mesh key, but a broken one must not grow this
 * relay without bound; past it, further nodes are not reachable through the mesh.
 */
export const MESH_REMOTE_NODES_MAX = 65_536;

export class RelayMesh {
  private readonly peers: RelayClient[] = [];
  /** node key hex → the mesh peer it is connected to */
  private readonly where = new Map<string, RelayClient>();

  constructor(
    peers: MeshPeer[],
    meshKey: string,
    private readonly isLocal: (hex: string) => unknown,
    private readonly log: (m: string) => void,
  ) {
    const priv = generatePrivateKey();
    for (const { url, fingerprint } of peers) {
      const c: RelayClient = new RelayClient({
        url,
        ...(fingerprint ? { fingerprint } : {}),
        nodePrivate: priv,
        meshKey,
        onState: (up, err) => {
          if (up) c.sendFrame(frame(FrameType.watchConns));
          else for (const [k, v] of this.where) if (v === c) this.where.delete(k);
          this.log(up ? `meshed with ${url}` : `mesh link to ${url} down${err ? `: ${err}` : ''}`);
        },
        onPeerPresent: (k) => {
          const hex = k.toString('hex');
          if (this.where.has(hex) || this.where.size < MESH_REMOTE_NODES_MAX) this.where.set(hex, c);
        },
        onPeerGone: (k) => {
          if (this.where.get(k.toString('hex')) === c) this.where.delete(k.toString('hex'));
        },
      });
      this.peers.push(c);
    }
  }

  /** The links, for status and tests. */
  get links(): readonly RelayClient[] {
    return this.peers;
  }

  start(): void {
    for (const p of this.peers) p.start();
  }
  stop(): void {
    for (const p of this.peers) p.stop();
  }

  forward(src: Buffer, dst: Buffer, pkt: Buffer): boolean {
    const hex = dst.toString('hex');
    if (this.isLocal(hex)) return false;
    const c = this.where.get(hex);
    return c ? c.sendFrame(frame(FrameType.forwardPacket, src, dst, pkt)) : false;
  }
}
