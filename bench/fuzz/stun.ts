// The STUN codec (src/nat/stun.ts): binding requests and responses arrive on
// the WireGuard socket from anyone. Inputs: valid requests and responses
// (IPv4 and IPv6 mapped addresses, random transaction ids), their byte
// mutations, random bytes with the magic cookie in place and random
// attributes, and plain random bytes. Checked: parseStun never throws; what
// it returns is typed (a 12-byte txid, an address that parses, a port); a
// response built by bindingResponse parses back to the address and txid it
// was built from, and a request to its txid.
import { bindingRequest, bindingResponse, isStun, parseStun, STUN_MAGIC } from '../../src/nat/stun.js';
import { readIpv6 } from '../../src/util/ip.js';
import { parseIp } from '../../src/util/netaddr.js';
import { check, fuzzLoop, type FuzzTarget } from './harness.js';
import { mutateBytes, randomBytes } from './mutate.js';
import type { Rng } from './rng.js';

export function randomAddress(r: Rng): string {
  return r.bool() ? [r.int(256), r.int(256), r.int(256), r.int(256)].join('.') : readIpv6(r.bytes(16));
}

function stunLike(r: Rng): Buffer {
  const attrs: Buffer[] = [];
  for (let n = r.int(5); n > 0; n--) {
    const body = r.bytes(r.pick([0, 4, 8, 20, r.int(40)]));
    const a = Buffer.alloc(4 + body.length + ((4 - (body.length % 4)) % 4));
    a.writeUInt16BE(r.pick([0x0001, 0x0020, 0x8022, 0x8028, r.int(65536)]), 0);
    a.writeUInt16BE(r.chance(0.8) ? body.length : r.int(65536), 2);
    body.copy(a, 4);
    attrs.push(a);
  }
  const body = Buffer.concat(attrs);
  const h = Buffer.alloc(20);
  h.writeUInt16BE(r.pick([0x0001, 0x0101, 0x0111, r.int(0x4000)]), 0);
  h.writeUInt16BE(r.chance(0.8) ? body.length : r.int(65536), 2);
  h.writeUInt32BE(STUN_MAGIC, 4);
  r.bytes(12).copy(h, 8);
  return Buffer.concat([h, body]);
}

const target: FuzzTarget = {
  name: 'stun',
  kind: 'pure',
  description: 'parseStun: never throws, typed results, bindingRequest/bindingResponse round trip',
  run: (rng, iterations, onProgress) =>
    fuzzLoop(rng, iterations, onProgress, (r, ctx) => {
      const txid = r.bytes(12);
      const addr = { address: randomAddress(r), port: r.int(65536) };
      const kind = r.int(6);
      const valid = r.bool() ? bindingResponse(txid, addr) : bindingRequest(txid).packet;
      let b: Buffer;
      if (kind <= 1) b = valid;
      else if (kind <= 3) b = mutateBytes(r, valid, r.chance(0.2) ? stunLike(r) : undefined);
      else if (kind === 4) b = stunLike(r);
      else b = randomBytes(r, 200);
      ctx.input = b;
      const m = parseStun(b);
      if (m) {
        check(isStun(b), 'parsed something isStun refuses');
        check(m.txid.length === 12, 'txid is not 12 bytes');
        if (m.kind === 'response') {
          let ok = false;
          try {
            ok = parseIp(m.mapped.address).text === m.mapped.address;
          } catch {
            ok = false;
          }
          check(ok, `mapped address ${JSON.stringify(m.mapped.address)} does not parse as a canonical IP`);
          check(Number.isInteger(m.mapped.port) && m.mapped.port >= 0 && m.mapped.port <= 65535, `mapped port ${m.mapped.port}`);
        }
      }
      if (kind <= 1) {
        check(m?.txid.equals(txid) === true, 'a valid message did not parse to its txid');
        if (valid.readUInt16BE(0) === 0x0101) {
          const same = m.kind === 'response' && m.mapped.address === addr.address && m.mapped.port === addr.port;
          check(same, `response round trip: ${JSON.stringify(m)} for ${JSON.stringify(addr)}`);
        } else check(m.kind === 'request', 'request round trip');
      }
      return m ? 'accepted' : 'rejected';
    }),
};
export default target;
