// Map streams opened from a process of their own, so that a test measuring the
// control server's memory counts only the server's side of each connection.
// Forked with IPC; it is sent { url, certPem, controlPublic, privs } (keys in
// base64, through the IPC channel, never argv), opens one stream per key, and
// answers 'ready' once every stream holds its first map. It stays until killed.
import { Node, openStream, type Harness, type OpenStream, until } from './helpers.js';

interface Setup {
  url: string;
  certPem: string;
  controlPublic: string;
  privs: string[];
}

process.once('message', (m: Setup) => {
  void (async () => {
    const h = { url: m.url, server: { certPem: m.certPem } } as unknown as Harness;
    const pub = Buffer.from(m.controlPublic, 'base64');
    const streams: OpenStream[] = [];
    for (const p of m.privs) streams.push(await openStream(h, new Node(pub, Buffer.from(p, 'base64'))));
    await until(() => streams.every((s) => s.lines().some((l) => l.startsWith('{"type":"map"'))), 60_000, 'every first map');
    process.send!({ type: 'ready', mapBytes: Buffer.byteLength(streams[0]!.lines()[0]!) });
  })().catch((err: Error) => process.send!({ type: 'error', message: err.message }));
});
