// The disco codec (src/nat/disco.ts): sealed ping/pong/call-me-maybe from
// peers on the WireGuard socket. Inputs: valid messages of each type sealed
// with the shared key, their byte mutations (before and after sealing, so
// mutated bodies get past the box), bodies of random bytes sealed validly,
// and random bytes. Checked: isDisco/discoSender/openDisco/decodeBody never
// throw; results are typed (12-byte txid, 32-byte key, addresses that parse,
// ports, at most 32 endpoints); seal → open gives the message back.
import { boxKey, sealBox } from '../../src/crypto/box.js';
import { clampPrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { decodeBody, DISCO_MAGIC, discoSender, isDisco, openDisco, sealDisco, type DiscoMessage } from '../../src/nat/disco.js';
import { parseIp } from '../../src/util/netaddr.js';
import { check, fuzzLoop, type FuzzTarget } from './harness.js';
import { mutateBytes, randomBytes } from './mutate.js';
import { Rng } from './rng.js';
import { randomAddress } from './stun.js';

function message(r: Rng): DiscoMessage {
  const t = r.int(3);
  if (t === 0) return { type: 'ping', txid: r.bytes(12), nodeKey: r.bytes(32) };
  if (t === 1) return { type: 'pong', txid: r.bytes(12), src: { address: randomAddress(r), port: r.int(65536) } };
  return { type: 'callMeMaybe', endpoints: Array.from({ length: r.length(32) }, () => ({ address: randomAddress(r), port: r.int(65536) })) };
}

function checkTyped(m: DiscoMessage): void {
  const addr = (a: { address: string; port: number }): void => {
    let ok = false;
    try {
      ok = parseIp(a.address).text === a.address;
    } catch {
      ok = false;
    }
    check(ok, `address ${JSON.stringify(a.address)} does not parse as a canonical IP`);
    check(Number.isInteger(a.port) && a.port >= 0 && a.port <= 65535, `port ${a.port}`);
  };
  if (m.type === 'ping') check(m.txid.length === 12 && m.nodeKey.length === 32, 'ping field sizes');
  else if (m.type === 'pong') {
    check(m.txid.length === 12, 'pong txid size');
    addr(m.src);
  } else {
    check(m.endpoints.length <= 32, `${m.endpoints.length} endpoints in one call-me-maybe`);
    m.endpoints.forEach(addr);
  }
}

const same = (a: DiscoMessage, b: DiscoMessage | null): boolean => JSON.stringify(b) === JSON.stringify(a);

const target: FuzzTarget = {
  name: 'disco',
  kind: 'pure',
  description: 'isDisco/openDisco/decodeBody: never throw, typed results, seal → open round trip',
  run: async (rng, iterations, onProgress) => {
    const setup = new Rng(rng.seed ^ 0xd15c0);
    const a = clampPrivateKey(setup.bytes(32));
    const b = clampPrivateKey(setup.bytes(32));
    const aPub = publicKeyOf(a);
    const key = boxKey(a, publicKeyOf(b));
    return fuzzLoop(rng, iterations, onProgress, (r, ctx) => {
      const m = message(r);
      const kind = r.int(6);
      const sealed = sealDisco(m, aPub, key);
      let pkt: Buffer;
      if (kind <= 1) pkt = sealed;
      else if (kind === 2) pkt = mutateBytes(r, sealed);
      else if (kind === 3) {
        // a mutated body in a valid box: gets past authentication to the body parser
        const plain = mutateBytes(r, Buffer.concat([Buffer.of(r.range(0, 4), 0), randomBytes(r, 40 * 18)]));
        pkt = Buffer.concat([DISCO_MAGIC, aPub, sealBox(key, plain)]);
      } else if (kind === 4) pkt = Buffer.concat([DISCO_MAGIC, randomBytes(r, 200)]);
      else pkt = randomBytes(r, 300);
      ctx.input = { message: m, packet: pkt };
      const raw = decodeBody(randomBytes(r, 600));
      if (raw) checkTyped(raw);
      if (!isDisco(pkt)) {
        check(kind > 1, 'a sealed message is not disco');
        return 'rejected';
      }
      check(discoSender(pkt).length === 32, 'sender key is not 32 bytes');
      const got = openDisco(pkt, key);
      if (got) checkTyped(got);
      if (kind <= 1) check(same(m.type === 'callMeMaybe' ? { ...m, endpoints: m.endpoints.slice(0, 32) } : m, got), `round trip: ${JSON.stringify(got)}`);
      return got ? 'accepted' : 'rejected';
    });
  },
};
export default target;
