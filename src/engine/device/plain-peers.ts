// Peers on plain WireGuard: a phone or other device running a stock WireGuard
// app, which reaches the mesh through a gateway node. Such a peer knows no disco
// and no relay, so the gateway's device holds it as a classic WireGuard peer
// (wireguard-go's model): its public key, its own addresses as AllowedIPs, no
// preset endpoint (the first authenticated handshake gives it) and classic
// roaming (each authenticated packet moves the endpoint, peer-state.ts). It
// shares the device, and so the UDP socket, with the mesh peers that path
// selection owns; its endpoint is always a real address, which the PathBind
// sends to directly.
import type { IpPrefix } from '../../util/netaddr.js';
import type { Device } from './device.js';
import type { Peer } from './peer.js';

export interface PlainPeerConfig {
  publicKey: Buffer;
  /** the device's own addresses (/32, /128): what it may send from and what the gateway routes to it */
  allowedIps: IpPrefix[];
}

/** The set of plain peers one device holds; `set` makes it exactly a list and leaves every other peer alone. */
export class PlainPeers {
  /** public key (hex) → the peer this set added */
  private readonly owned = new Map<string, Peer>();

  constructor(
    private readonly device: Device,
    private readonly log: (msg: string) => void,
  ) {}

  /**
   * Makes the device's plain peers exactly `list`. A removed one is removed from the device with its sessions at
   * once. A key that `isMeshPeer` claims (path selection owns that peer) is refused: one key is one peer.
   */
  set(list: PlainPeerConfig[], isMeshPeer: (publicKey: Buffer) => boolean): void {
    const wanted = new Map<string, PlainPeerConfig>();
    for (const c of list) {
      const hex = c.publicKey.toString('hex');
      if (isMeshPeer(c.publicKey)) this.log(`plain peer ${c.publicKey.toString('base64')}: refused, a mesh node has that key`);
      else if (this.device.identity()?.publicKey.equals(c.publicKey)) this.log('plain peer with this node’s own key: refused');
      else wanted.set(hex, c);
    }
    for (const [hex, peer] of this.owned)
      if (!wanted.has(hex)) {
        // a key a mesh node took over stays: the peer is path selection's now
        if (!isMeshPeer(peer.publicKey)) this.device.removePeer(peer.publicKey);
        this.owned.delete(hex);
      }
    for (const [hex, c] of wanted) {
      const peer = this.device.addPeer(c.publicKey);
      this.owned.set(hex, peer);
      this.device.allowedIps.removeByValue(peer);
      for (const p of c.allowedIps) this.device.allowedIps.insert(p.address.text, p.bits, peer);
    }
  }

  get(publicKey: Buffer): Peer | undefined {
    return this.owned.get(publicKey.toString('hex'));
  }

  has(publicKey: Buffer): boolean {
    return this.owned.has(publicKey.toString('hex'));
  }
}
