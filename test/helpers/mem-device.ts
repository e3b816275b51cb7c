// A WireGuard device on a MemNet and a FakeClock, for the engine's in-memory
// protocol tests: what its TUN would receive is collected in `received`.
import type { FakeClock } from '../../src/engine/clock.js';
import { generatePrivateKey, publicKeyOf } from '../../src/engine/device/crypto.js';
import { Device, type DeviceOptions } from '../../src/engine/device/device.js';
import type { MemNet } from './memnet.js';

export interface MemDevice {
  dev: Device;
  received: Buffer[];
  pub: Buffer;
  priv: Buffer;
  port: number;
  /** the address it is bound to on the MemNet */
  address: string;
}

/** A device bound to `address`:51820 on `net`, with a fresh key. */
export async function memDevice(net: MemNet, clock: FakeClock, address: string, opts: DeviceOptions = {}): Promise<MemDevice> {
  const priv = generatePrivateKey();
  const dev = new Device({ clock, ...opts });
  dev.setPrivateKey(priv);
  const received: Buffer[] = [];
  dev.attachTun((p) => (received.push(Buffer.from(p)), true));
  await dev.attachBind(net.bind(address), 51820);
  return { dev, received, pub: publicKeyOf(priv), priv, port: dev.port, address };
}

/** Lets time pass in small steps, delivering datagrams as it goes (as a real network would). */
export function runNet(net: MemNet, clock: FakeClock, ms: number, stepMs = 100): void {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(Math.min(stepMs, ms - t));
    net.pump();
  }
}

/**
 * Makes A (inner 10.0.0.1) and B (inner 10.0.0.2) peers: A knows B's endpoint,
 * B learns A's by roaming. `replacePeers` drops what each held before; with
 * `aOnly`, B's peers are left as they were.
 */
export async function linkPair(a: MemDevice, b: MemDevice, o: { replacePeers?: boolean; aOnly?: boolean } = {}): Promise<void> {
  const replacePeers = o.replacePeers ?? false;
  await a.dev.applySet({
    replacePeers,
    peers: [
      {
        publicKey: b.pub,
        remove: false,
        updateOnly: false,
        endpoint: { address: b.address, port: b.port },
        replaceAllowedIps: true,
        allowedIps: [{ address: '10.0.0.2', bits: 32, family: 4 }],
      },
    ],
  });
  if (o.aOnly) return;
  await b.dev.applySet({
    replacePeers,
    peers: [{ publicKey: a.pub, remove: false, updateOnly: false, replaceAllowedIps: true, allowedIps: [{ address: '10.0.0.1', bits: 32, family: 4 }] }],
  });
}
