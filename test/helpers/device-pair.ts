// Two WireGuard devices in memory (MemNet, fake clock), each the other's only
// peer: a at 192.0.2.1, b at 192.0.2.2. Each records the packets it writes to
// its TUN. `aAllows` is what a routes to b (b's AllowedIPs at a), `bAllows`
// what b accepts from a.
import { FakeClock } from '../../src/engine/clock.js';
import { generatePrivateKey, publicKeyOf } from '../../src/engine/device/crypto.js';
import { Device } from '../../src/engine/device/device.js';
import { MemNet } from './memnet.js';

export interface V4Prefix {
  address: string;
  bits: number;
}

export async function devicePair(aAllows: V4Prefix = { address: '10.0.0.2', bits: 32 }, bAllows: V4Prefix = { address: '10.0.0.1', bits: 32 }) {
  const net = new MemNet();
  const clock = new FakeClock();
  const mk = async (address: string) => {
    const priv = generatePrivateKey();
    const dev = new Device({ clock });
    dev.setPrivateKey(priv);
    const received: Buffer[] = [];
    dev.attachTun((p) => (received.push(Buffer.from(p)), true));
    await dev.attachBind(net.bind(address), 51820);
    return { dev, received, pub: publicKeyOf(priv) };
  };
  const a = await mk('192.0.2.1');
  const b = await mk('192.0.2.2');
  const peerConf = (publicKey: Buffer, allow: V4Prefix, endpoint: { address: string; port: number }) => ({
    replacePeers: false,
    peers: [{ publicKey, remove: false, updateOnly: false, endpoint, replaceAllowedIps: true, allowedIps: [{ ...allow, family: 4 as const }] }],
  });
  await a.dev.applySet(peerConf(b.pub, aAllows, { address: '192.0.2.2', port: 51820 }));
  await b.dev.applySet(peerConf(a.pub, bAllows, { address: '192.0.2.1', port: 51820 }));
  return { net, a, b };
}
