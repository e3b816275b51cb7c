// UPnP IGD discovery against a hostile gateway: a fake IGD (SSDP responder,
// description and SOAP over HTTP) in a network namespace of the test's own,
// and upnpMap run beside it. What a LAN device sends must never throw out of
// upnpMap, nor put text that is not an IP address into the mapping, nor be
// read without bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import { Lab, must } from '../helpers/netns.js';
import { rootSkipReason } from '../helpers/root.js';

const skip = rootSkipReason();

/** Runs upnpMap in `ns` against a fake IGD answering with `desc` (after a comment of `padBytes`) and `externalIp`; returns what upnpMap resolved to, or its error. */
async function againstFakeIgd(lab: Lab, ns: string, desc: string, externalIp: string, padBytes = 0): Promise<{ result?: unknown; error?: string }> {
  const portmap = JSON.stringify(join(packageRoot(), 'dist', 'src', 'nat', 'portmap.js'));
  const script = `
    const dgram = await import('node:dgram');
    const http = await import('node:http');
    const m = await import(${portmap});
    const desc = ${JSON.stringify(desc)}.replace('<root>', '<root><!--' + 'x'.repeat(${padBytes}) + '-->');
    const soap = (body) => '<?xml version="1.0"?><s:Envelope><s:Body>' + body + '</s:Body></s:Envelope>';
    const web = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.url === '/desc.xml') return res.end(desc.replace('PORT', String(web.address().port)));
        if (/GetExternalIPAddress/.test(body)) return res.end(soap('<u:r><NewExternalIPAddress>' + ${JSON.stringify(externalIp)} + '</NewExternalIPAddress></u:r>'));
        res.end(soap('<u:AddPortMappingResponse/>'));
      });
    });
    await new Promise((r) => web.listen(0, '127.0.0.1', r));
    const ssdp = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise((r) => ssdp.bind(1900, r));
    ssdp.addMembership('239.255.255.250', '127.0.0.1');
    ssdp.on('message', (msg, from) => {
      const answer = 'HTTP/1.1 200 OK\\r\\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\\r\\nLOCATION: http://127.0.0.1:' + web.address().port + '/desc.xml\\r\\n\\r\\n';
      ssdp.send(answer, from.port, from.address);
    });
    let out;
    try { out = { result: await m.upnpMap('127.0.0.1', '127.0.0.1', 40002) }; } catch (e) { out = { error: String(e) }; }
    process.stdout.write(JSON.stringify(out));
    process.exit(0);`;
  const r = await lab.exec(ns, [process.execPath, '--input-type=module', '-e', script], 30_000);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { result?: unknown; error?: string };
}

const service = (controlUrl: string): string =>
  `<?xml version="1.0"?><root><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>${controlUrl}</controlURL></service></serviceList></device></root>`;

test('UPnP: a broken control URL, a bogus external address or an oversized description give no mapping and no exception', { skip }, async () => {
  const lab = new Lab();
  try {
    const ns = await lab.netns('u');
    // SSDP multicast stays on the namespace's loopback
    await must('ip', ['-n', ns, 'link', 'set', 'lo', 'multicast', 'on']);
    await must('ip', ['-n', ns, 'route', 'add', '239.0.0.0/8', 'dev', 'lo']);
    // the control: a well-formed gateway maps
    assert.deepEqual(await againstFakeIgd(lab, ns, service('/ctl'), '203.0.113.7'), {
      result: { protocol: 'UPnP', external: '203.0.113.7:40002', internalPort: 40002, lifetimeS: 7200 },
    });
    // a control URL that is no URL: no mapping, not an exception out of upnpMap
    assert.deepEqual(await againstFakeIgd(lab, ns, service('http://['), '203.0.113.7'), { result: null });
    // an external "address" that is not one never becomes an endpoint
    assert.deepEqual(await againstFakeIgd(lab, ns, service('/ctl'), '203.0.113.7 and more'), { result: null });
    // a description past MAX_UPNP_BODY_BYTES (64 KiB) is refused unread
    assert.deepEqual(await againstFakeIgd(lab, ns, service('/ctl'), '203.0.113.7', 1024 * 1024), { result: null });
  } finally {
    await lab.cleanup();
  }
});
