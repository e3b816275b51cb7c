// A UDP socket of its own for one peer: port prediction (birthday.ts) opens
// many, each making a new mapping on a hard NAT, and the one that reaches the
// peer stays as that peer's direct path. Path selection sends the peer's
// WireGuard packets and heartbeats through it and hands what it receives to
// the same demultiplexing as the main socket. IPv4 only: hard NATs are an
// IPv4 matter.
import dgram from 'node:dgram';
import { markDgram } from '../../util/marked-socket.js';
import { normaliseAddress, type Endpoint } from '../conn/endpoint.js';

/** What path selection needs of a per-peer socket; tests may supply their own. */
export interface PeerSocket {
  /** the local port, for logs and status */
  readonly localPort: number;
  readonly closed: boolean;
  /** false once closed (a late heartbeat must not throw) */
  send(buf: Buffer, ep: Endpoint): boolean;
  close(): void;
}

export type PeerSocketOpener = (onMessage: (buf: Buffer, src: Endpoint, sock: PeerSocket) => void) => Promise<PeerSocket>;

export interface PeerSocketOptions {
  /** SO_MARK for the socket (0: none), so its packets bypass the tunnel as the main socket's do */
  mark?: number;
  /** local address to bind (default 0.0.0.0) */
  address?: string;
}

class DgramPeerSocket implements PeerSocket {
  closed = false;
  sendErrors = 0;
  private readonly onSent = (err: Error | null): void => {
    if (err) this.sendErrors++;
  };

  constructor(
    private readonly s: dgram.Socket,
    readonly localPort: number,
  ) {}

  send(buf: Buffer, ep: Endpoint): boolean {
    if (this.closed || ep.address.includes(':')) return false;
    this.s.send(buf, ep.port, ep.address, this.onSent);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.s.close();
  }
}

/** Binds a new IPv4 UDP socket on an ephemeral port; datagrams go to `onMessage` until it is closed. */
export function openPeerSocket(onMessage: (buf: Buffer, src: Endpoint, sock: PeerSocket) => void, o: PeerSocketOptions = {}): Promise<PeerSocket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type: 'udp4' });
    s.once('error', reject);
    s.bind({ port: 0, address: o.address ?? '0.0.0.0', exclusive: true }, () => {
      s.off('error', reject);
      // a late ICMP error or a send on a dying socket is counted by the send callback, never thrown
      s.on('error', () => {});
      if (o.mark) markDgram(s, o.mark);
      const sock = new DgramPeerSocket(s, s.address().port);
      s.on('message', (msg, rinfo) => {
        if (!sock.closed) onMessage(msg, { address: normaliseAddress(rinfo.address), port: rinfo.port }, sock);
      });
      resolve(sock);
    });
  });
}
