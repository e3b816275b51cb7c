// Two engines in this process over real loopback UDP (UdpBind: dgram sockets,
// sendmmsg batches), inner addresses 10.9.0.1 ↔ 10.9.0.2; no TUN, no root.
import { Device } from '../../src/engine/device/device.js';
import { UdpBind } from '../../src/engine/conn/udp.js';
import { generatePrivateKey, publicKeyOf } from '../../src/engine/device/crypto.js';
import { ipv4Packet } from './memnet.js';

export interface LoopbackPair {
  devs: [Device, Device];
  binds: [UdpBind, UdpBind];
  /** packets each engine wrote to its "TUN", copied */
  received: [Buffer[], Buffer[]];
  inner: [string, string];
  close(): Promise<void>;
}

export async function loopbackPair(onTun?: (i: 0 | 1, p: Buffer) => void): Promise<LoopbackPair> {
  const binds: [UdpBind, UdpBind] = [new UdpBind(), new UdpBind()];
  const devs: [Device, Device] = [new Device(), new Device()];
  const keys = [generatePrivateKey(), generatePrivateKey()];
  const received: [Buffer[], Buffer[]] = [[], []];
  const inner: [string, string] = ['10.9.0.1', '10.9.0.2'];
  for (const i of [0, 1] as const) {
    devs[i].setPrivateKey(keys[i]!);
    devs[i].attachTun(onTun ? (p) => (onTun(i, p), true) : (p) => (received[i].push(Buffer.from(p)), true));
    await devs[i].attachBind(binds[i], 0);
  }
  for (const i of [0, 1] as const) {
    const o = 1 - i;
    await devs[i].applySet({
      replacePeers: false,
      peers: [
        {
          publicKey: publicKeyOf(keys[o]!),
          remove: false,
          updateOnly: false,
          endpoint: { address: '127.0.0.1', port: devs[o]!.port },
          replaceAllowedIps: true,
          allowedIps: [{ address: inner[o]!, bits: 32, family: 4 }],
        },
      ],
    });
  }
  return {
    devs,
    binds,
    received,
    inner,
    close: async () => {
      for (const d of devs) await d.close();
    },
  };
}

/** Polls every 10 ms until `ok()` or `ms` pass (a deadline, not a limit: the caller asserts afterwards). */
export async function until(ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
}

export { ipv4Packet };
