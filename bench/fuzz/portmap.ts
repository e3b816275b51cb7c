// The port-mapping parsers (src/nat/portmap.ts): NAT-PMP address and mapping
// answers, PCP MAP answers, SSDP search answers, IGD descriptions and the
// GetExternalIPAddress SOAP answer, all sent by whatever is on the LAN.
// Inputs: valid answers built from random values, their mutations (bytes, or
// text edits for the XML and HTTP ones), random bytes and text, and large
// descriptions with many service entries. Checked: no exception; what is
// returned is typed (IPv4 addresses that parse, ports 1-65535, http(s) URLs);
// valid answers give back the values they were built from.
import { parseExternalIp, parseIgdDescription, parseNatpmpAddress, parseNatpmpMapping, parsePcpMap, parseSsdpResponse } from '../../src/nat/portmap.js';
import { parseIp } from '../../src/util/netaddr.js';
import { check, fuzzLoop, type FuzzTarget } from './harness.js';
import { mutateBytes, randomBytes } from './mutate.js';
import type { Rng } from './rng.js';

const SERVICES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
  'urn:schemas-upnp-org:service:Layer3Forwarding:1',
];

function ipv4(r: Rng): string {
  return [r.range(1, 223), r.int(256), r.int(256), r.range(1, 254)].join('.');
}

function checkIp(ip: string): void {
  let ok = false;
  try {
    ok = parseIp(ip).family === 4;
  } catch {
    ok = false;
  }
  check(ok && ip !== '0.0.0.0', `returned ${JSON.stringify(ip)} as an IPv4 address`);
}

function checkEndpoint(ep: string): void {
  const i = ep.lastIndexOf(':');
  checkIp(ep.slice(0, i));
  const port = Number(ep.slice(i + 1));
  check(Number.isInteger(port) && port >= 1 && port <= 65535, `port ${ep.slice(i + 1)}`);
}

function checkUrl(u: string): void {
  check(/^https?:\/\//.test(u) && new URL(u).toString() === u, `returned ${JSON.stringify(u)} as a URL`);
}

function textMutation(r: Rng, s: string): string {
  const edits = ['<', '>', '</controlURL>', '<controlURL>', '\u0000', '"', 'http://[', '::', '\r\n', ' ', 'é', 'javascript:alert(1)', '//evil/', '%zz'];
  let t = s;
  for (let k = r.range(1, 3); k > 0; k--) {
    const at = r.int(t.length + 1);
    const op = r.int(3);
    if (op === 0) t = t.slice(0, at) + r.pick(edits) + t.slice(at);
    else if (op === 1) t = t.slice(0, at) + t.slice(at + r.range(1, 20));
    else t = t.slice(0, at);
  }
  return t;
}

const target: FuzzTarget = {
  name: 'portmap',
  kind: 'pure',
  description: 'NAT-PMP/PCP/SSDP/IGD/SOAP parsers: no exception, typed results, valid answers parse to the values they carry',
  run: (rng, iterations, onProgress) =>
    fuzzLoop(rng, iterations, onProgress, (r, ctx) => {
      const which = r.int(6);
      const mutate = r.chance(0.5);
      const random = !mutate && r.chance(0.2);
      const ip = ipv4(r);
      const port = r.range(1, 65535);
      const life = r.u32();
      if (which === 0 || which === 1) {
        const b = Buffer.alloc(which === 0 ? 12 : 16);
        b[1] = which === 0 ? 128 : 129;
        b.writeUInt32BE(r.u32(), 4);
        if (which === 0) Buffer.from(ip.split('.').map(Number)).copy(b, 8);
        else {
          b.writeUInt16BE(port, 8);
          b.writeUInt16BE(port, 10);
          b.writeUInt32BE(life, 12);
        }
        const input = random ? randomBytes(r, 40) : mutate ? mutateBytes(r, b) : b;
        ctx.input = { which: which === 0 ? 'natpmp-address' : 'natpmp-mapping', bytes: input };
        if (which === 0) {
          const got = parseNatpmpAddress(input);
          if (got) checkIp(got);
          if (!mutate && !random) check(got === ip, `valid NAT-PMP address answer gave ${got}`);
          return got ? 'accepted' : 'rejected';
        }
        const got = parseNatpmpMapping(input, port);
        if (got)
          check(got.externalPort >= 1 && got.externalPort <= 65535 && got.lifetimeS >= 0 && got.lifetimeS <= 0xffffffff, `mapping ${JSON.stringify(got)}`);
        if (!mutate && !random) check(got?.externalPort === port && got.lifetimeS === life, `valid NAT-PMP mapping answer gave ${JSON.stringify(got)}`);
        return got ? 'accepted' : 'rejected';
      }
      if (which === 2) {
        const nonce = r.bytes(12);
        const b = Buffer.alloc(60);
        b[0] = 2;
        b[1] = 0x81;
        b.writeUInt32BE(life, 4);
        nonce.copy(b, 24);
        b[36] = 17;
        b.writeUInt16BE(port, 42);
        b.writeUInt16BE(0xffff, 54);
        Buffer.from(ip.split('.').map(Number)).copy(b, 56);
        const input = random ? randomBytes(r, 100) : mutate ? mutateBytes(r, b) : b;
        ctx.input = { which: 'pcp-map', nonce, bytes: input };
        const got = parsePcpMap(input, nonce);
        if (got) checkEndpoint(got.external);
        if (!mutate && !random) check(got?.external === `${ip}:${port}` && got.lifetimeS === life, `valid PCP answer gave ${JSON.stringify(got)}`);
        return got ? 'accepted' : 'rejected';
      }
      if (which === 3) {
        const loc = `http://${ip}:${port}/rootDesc.xml`;
        const text = `HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nUSN: uuid:x::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\nSERVER: x\r\nLOCATION: ${loc}\r\n\r\n`;
        const input = random
          ? randomBytes(r, 400)
          : mutate
            ? r.bool()
              ? mutateBytes(r, Buffer.from(text))
              : Buffer.from(textMutation(r, text), 'latin1')
            : Buffer.from(text);
        ctx.input = { which: 'ssdp', text: input.toString('latin1') };
        const got = parseSsdpResponse(input);
        if (got) checkUrl(got);
        if (!mutate && !random) check(got === new URL(loc).toString(), `valid SSDP answer gave ${got}`);
        return got ? 'accepted' : 'rejected';
      }
      if (which === 4) {
        const location = `http://${ip}:${port}/rootDesc.xml`;
        const entries = Array.from({ length: r.chance(0.05) ? r.range(100, 1200) : r.range(0, 4) }, () => {
          const s = r.pick(SERVICES);
          const url = r.pick(['/ctl/IPConn', `http://${ipv4(r)}:${r.range(1, 65535)}/ctl`, 'ctl/x', '']);
          return {
            s,
            url,
            xml: `<service><serviceType>${s}</serviceType><serviceId>x</serviceId>${r.chance(0.9) ? `<controlURL>${url}</controlURL>` : ''}</service>`,
          };
        });
        const desc = `<?xml version="1.0"?><root><device><serviceList>${entries.map((e) => e.xml).join('')}</serviceList></device></root>`;
        const input = random ? randomBytes(r, 2000).toString('latin1') : mutate ? textMutation(r, desc) : desc;
        ctx.input = { which: 'igd', location, desc: input };
        const got = parseIgdDescription(input, location);
        for (const g of got) {
          checkUrl(g.controlUrl);
          check(SERVICES.includes(g.service), `service ${g.service}`);
        }
        check(new Set(got.map((g) => g.service)).size === got.length, 'a service listed twice');
        return got.length ? 'accepted' : 'rejected';
      }
      const text = `<?xml version="1.0"?><s:Envelope><s:Body><u:GetExternalIPAddressResponse><NewExternalIPAddress>${ip}</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>`;
      const input = random ? randomBytes(r, 300).toString('latin1') : mutate ? textMutation(r, text) : text;
      ctx.input = { which: 'soap-external-ip', text: input };
      const got = parseExternalIp(input);
      if (got) checkIp(got);
      if (!mutate && !random) check(got === ip, `valid SOAP answer gave ${got}`);
      return got ? 'accepted' : 'rejected';
    }),
};
export default target;
