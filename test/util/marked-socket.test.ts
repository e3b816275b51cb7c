// Marked sockets: the mark is on the descriptor before connect, TLS and HTTP(S) work over them,
// and a real policy rule in a namespace routes marked traffic out of another link than the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpsRequest } from 'node:https';
import { createServer as netServer, type AddressInfo } from 'node:net';
import { createServer as tlsServer } from 'node:tls';
import { join } from 'node:path';
import { connectMarked, fdMark, markedConnection, MESH_FWMARK, socketFd } from '../../src/util/marked-socket.js';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';
import { packageRoot } from '../../src/cli/version.js';
import { rootSkipReason } from '../helpers/root.js';
import { Lab, must } from '../helpers/netns.js';

const skip = rootSkipReason();

test('a marked TCP socket carries the mark from before connect and talks like any other', { skip }, async () => {
  const srv = netServer((c) => c.end(`hello ${c.remoteAddress}`));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const s = await connectMarked({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port });
    try {
      assert.equal(fdMark(socketFd(s)), MESH_FWMARK, 'mark set on the descriptor before connect');
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      await once(s, 'end');
      assert.equal(got, 'hello 127.0.0.1');
    } finally {
      s.destroy();
    }
  } finally {
    srv.close();
  }
});

test('a refused marked connect is an ordinary ECONNREFUSED error', { skip }, async () => {
  const srv = netServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as AddressInfo).port;
  srv.close();
  await once(srv, 'close');
  const s = await connectMarked({ host: '127.0.0.1', port });
  const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
});

test('https.request over a marked TLS connection (createConnection) checks the certificate and carries the mark', { skip }, async () => {
  {
    const { certPem, keyPem } = createSelfSigned('localhost', ['localhost']);
    const conns = new Set<import('node:net').Socket>();
    const srv = tlsServer({ cert: certPem, key: keyPem }, (c) => {
      conns.add(c);
      c.once('data', () => c.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as AddressInfo).port;
    const get = (ca?: string) =>
      new Promise<{ body: string; mark: number | null }>((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port, path: '/', createConnection: markedConnection('127.0.0.1', port, { ca, servername: 'localhost' }) },
          (res) => {
            const mark = fdMark(socketFd((res.socket as unknown as { _parent?: import('node:net').Socket })._parent ?? res.socket));
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ body, mark }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      const ok = await get(certPem);
      assert.equal(ok.body, 'ok');
      assert.equal(ok.mark, MESH_FWMARK);
      await assert.rejects(get(undefined), /self-signed|self signed/);
    } finally {
      for (const c of conns) c.destroy();
      srv.close();
    }
  }
});

test('policy routing in a namespace: marked TCP and UDP leave by the main table, unmarked by table 52', { skip, timeout: 60_000 }, async () => {
  const lab = new Lab();
  try {
    const x = await lab.netns('x');
    const y = await lab.netns('y');
    await lab.link(x, '10.77.1.1/24', y, '10.77.1.2/24');
    // a second link between the same two namespaces: named here (link() names by namespace count)
    const [a2, b2] = [`${lab.id}qa`, `${lab.id}qb`];
    await must('ip', ['link', 'add', a2, 'netns', x, 'type', 'veth', 'peer', 'name', b2, 'netns', y]);
    await must('ip', ['-n', x, 'addr', 'add', '10.77.2.1/24', 'dev', a2]);
    await must('ip', ['-n', y, 'addr', 'add', '10.77.2.2/24', 'dev', b2]);
    await must('ip', ['-n', x, 'link', 'set', a2, 'up']);
    await must('ip', ['-n', y, 'link', 'set', b2, 'up']);
    await must('ip', ['-n', y, 'addr', 'add', '10.77.9.9/32', 'dev', 'lo']);
    // main: the "uplink" (link 1); table 52: the "tunnel" (link 2); rules as meshctl installs them
    await must('ip', ['-n', x, 'route', 'add', '10.77.9.9/32', 'via', '10.77.1.2']);
    await must('ip', ['-n', x, 'route', 'add', '10.77.9.9/32', 'via', '10.77.2.2', 'table', '52']);
    await must('ip', ['-n', x, 'rule', 'add', 'pref', '5210', 'fwmark', '0x80000/0xff0000', 'lookup', 'main']);
    await must('ip', ['-n', x, 'rule', 'add', 'pref', '5270', 'lookup', '52']);
    const server = lab.spawn(y, [
      process.execPath,
      '-e',
      `const net=require('net'),d=require('dgram');net.createServer(c=>c.end(c.remoteAddress)).listen(7000,'10.77.9.9');
       const u=d.createSocket('udp4');u.on('message',(m,r)=>u.send(r.address,r.port,r.address));u.bind(7001,'10.77.9.9',()=>console.log('ready'))`,
    ]);
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      server.once('exit', () => reject(new Error('server exited')));
    });
    const mod = join(packageRoot(), 'dist', 'src', 'util', 'marked-socket.js');
    const probe = `
      import net from 'node:net'; import dgram from 'node:dgram';
      import { connectMarked, markDgram } from ${JSON.stringify(mod)};
      const read = (s) => new Promise((r, j) => { let b = ''; s.on('data', (d) => (b += d)); s.on('end', () => r(b)); s.on('error', j); });
      const udp = (mark) => new Promise((r, j) => { const u = dgram.createSocket('udp4'); u.on('error', j);
        u.bind(0, () => { if (mark && !markDgram(u)) j(new Error('markDgram failed')); u.send('x', 7001, '10.77.9.9'); });
        u.on('message', (m) => { u.close(); r(m.toString()); }); });
      const plain = await read(net.connect(7000, '10.77.9.9'));
      const marked = await read(await connectMarked({ host: '10.77.9.9', port: 7000 }));
      console.log(JSON.stringify({ plain, marked, udpPlain: await udp(false), udpMarked: await udp(true) }));`;
    const r = await lab.exec(x, [process.execPath, '--input-type=module', '-e', probe]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { plain: '10.77.2.1', marked: '10.77.1.1', udpPlain: '10.77.2.1', udpMarked: '10.77.1.1' });
  } finally {
    await lab.cleanup();
  }
});
