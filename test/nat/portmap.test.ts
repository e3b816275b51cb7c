// UPnP IGD discovery against a stand-in gateway on loopback: 127.0.0.1 plays
// the default gateway, 127.0.0.2 another host on the LAN. Only the gateway's
// own SSDP answer counts, and only URLs on the gateway's address are fetched
// (the description, the control URL), never through a redirect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_UPNP_BODY_BYTES, upnpMap } from '../../src/nat/portmap.js';

const GATEWAY = '127.0.0.1';
const OTHER = '127.0.0.2';
const SSDP_WAIT_MS = 1000;

interface FakeHttp {
  server: Server;
  port: number;
  requests: string[];
  close(): Promise<void>;
}

/** An HTTP server on `host` that answers as an IGD would: description at /desc.xml, SOAP at /ctl. */
async function fakeIgd(
  host: string,
  o: { controlUrl?: string; externalIp?: string; descPath?: string; redirectTo?: string; bigDescription?: boolean } = {},
): Promise<FakeHttp> {
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url} ${String(req.headers.soapaction ?? '')}`);
      if (req.url === '/desc.xml') {
        if (o.redirectTo) return void res.writeHead(302, { location: o.redirectTo }).end();
        const pad = o.bigDescription ? `<!-- ${'x'.repeat(MAX_UPNP_BODY_BYTES)} -->` : '';
        return void res.end(
          `<?xml version="1.0"?><root><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>${o.controlUrl ?? '/ctl'}</controlURL></service></serviceList></device>${pad}</root>`,
        );
      }
      if (req.url === '/ctl' && /GetExternalIPAddress/.test(String(req.headers.soapaction))) {
        return void res.end(
          `<s:Envelope><s:Body><u:GetExternalIPAddressResponse><NewExternalIPAddress>${o.externalIp ?? '203.0.113.5'}</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>`,
        );
      }
      if (req.url === '/ctl' && /AddPortMapping/.test(String(req.headers.soapaction)))
        return void res.end('<s:Envelope><s:Body><u:AddPortMappingResponse/></s:Body></s:Envelope>');
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** An SSDP responder on `host` that answers every search with `location`. */
async function ssdpResponder(host: string, location: string): Promise<{ port: number; searches: number; close(): void }> {
  const s = dgram.createSocket('udp4');
  const state = { port: 0, searches: 0, close: () => s.close() };
  s.on('message', (m, from) => {
    if (!m.toString('latin1').startsWith('M-SEARCH')) return;
    state.searches++;
    s.send(
      Buffer.from(
        `HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: ${location}\r\nSERVER: fake\r\n\r\n`,
      ),
      from.port,
      from.address,
    );
  });
  await new Promise<void>((r) => s.bind(0, host, r));
  state.port = s.address().port;
  return state;
}

test('the gateway itself answering with URLs on its own address: the port is mapped', async () => {
  const igd = await fakeIgd(GATEWAY);
  const ssdp = await ssdpResponder(GATEWAY, `http://${GATEWAY}:${igd.port}/desc.xml`);
  try {
    const m = await upnpMap(GATEWAY, '127.0.0.1', 41641, 60, { ssdp: { host: GATEWAY, port: ssdp.port }, timeoutMs: SSDP_WAIT_MS });
    assert.deepEqual(m, { protocol: 'UPnP', external: '203.0.113.5:41641', internalPort: 41641, lifetimeS: 60 });
    assert.equal(igd.requests.length, 3);
  } finally {
    ssdp.close();
    await igd.close();
  }
});

test('an SSDP answer from another address than the gateway is ignored', async () => {
  const igd = await fakeIgd(OTHER);
  const rogue = await ssdpResponder(OTHER, `http://${OTHER}:${igd.port}/desc.xml`);
  try {
    const m = await upnpMap(GATEWAY, '127.0.0.1', 41641, 60, { ssdp: { host: OTHER, port: rogue.port }, timeoutMs: SSDP_WAIT_MS });
    assert.equal(m, null);
    assert.equal(rogue.searches, 1, 'the rogue did answer');
    assert.deepEqual(igd.requests, [], 'its description was not fetched');
  } finally {
    rogue.close();
    await igd.close();
  }
});

test('the gateway pointing LOCATION or controlURL elsewhere, or redirecting there: nothing is fetched off the gateway', async () => {
  const elsewhere = await fakeIgd(OTHER);
  const cases: { name: string; igd?: Parameters<typeof fakeIgd>[1]; location?: (gw: FakeHttp) => string }[] = [
    { name: 'LOCATION on another host', location: () => `http://${OTHER}:${elsewhere.port}/desc.xml` },
    { name: 'LOCATION by host name', location: (gw) => `http://localhost:${gw.port}/desc.xml` },
    { name: 'controlURL on another host', igd: { controlUrl: `http://${OTHER}:${elsewhere.port}/ctl` } },
    { name: 'description redirected', igd: { redirectTo: `http://${OTHER}:${elsewhere.port}/desc.xml` } },
    { name: 'an external address that is not IPv4', igd: { externalIp: '203.0.113.5:1/evil' } },
    { name: 'an oversized description', igd: { bigDescription: true } },
  ];
  try {
    for (const c of cases) {
      const gw = await fakeIgd(GATEWAY, c.igd);
      const ssdp = await ssdpResponder(GATEWAY, c.location ? c.location(gw) : `http://${GATEWAY}:${gw.port}/desc.xml`);
      try {
        const m = await upnpMap(GATEWAY, '127.0.0.1', 41641, 60, { ssdp: { host: GATEWAY, port: ssdp.port }, timeoutMs: SSDP_WAIT_MS });
        assert.equal(m, null, c.name);
        assert.ok(!gw.requests.some((r) => r.includes('AddPortMapping')), `${c.name}: no mapping asked for`);
      } finally {
        ssdp.close();
        await gw.close();
      }
      assert.deepEqual(elsewhere.requests, [], `${c.name}: nothing fetched from ${OTHER}`);
    }
  } finally {
    await elsewhere.close();
  }
});
