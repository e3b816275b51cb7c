// The STUN server beside every relay: answers binding requests with the
// address and port each request came from. Anything else is counted and dropped.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { bindingResponse, parseStun } from '../nat/stun.js';

export class StunServer {
  private sock: dgram.Socket | null = null;
  readonly stats = { requests: 0, malformed: 0 };
  port = 0;

  constructor(private readonly host: string, private readonly wantPort: number) {}

  async start(): Promise<void> {
    const type = isIPv6(this.host) ? 'udp6' : 'udp4';
    const s = dgram.createSocket({ type, reuseAddr: false });
    s.on('message', (msg, rinfo) => {
      const m = parseStun(msg);
      if (!m || m.kind !== 'request') {
        this.stats.malformed++;
        return;
      }
      this.stats.requests++;
      s.send(bindingResponse(m.txid, { address: rinfo.address.replace(/^::ffff:/, ''), port: rinfo.port }), rinfo.port, rinfo.address);
    });
    s.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(this.wantPort, this.host === '0.0.0.0' || this.host === '::' ? undefined : this.host, () => resolve());
    });
    this.sock = s;
    this.port = s.address().port;
  }

  async stop(): Promise<void> {
    const s = this.sock;
    this.sock = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
