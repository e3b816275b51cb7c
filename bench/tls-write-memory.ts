// Native memory a TLS server keeps after writing one large line to each of N
// connections, by how the line is written. The server (this process) accepts N
// HTTPS streams from a client process on loopback, writes each a line of
// --bytes (a JSON-like string, as control's first maps are), waits until every
// client has read it all, then reports malloc's figures and RSS.
//   node dist/bench/tls-write-memory.js --streams 1000 --bytes 60000 --mode whole|chunked [--trim]
import { fork } from 'node:child_process';
import { createServer, request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { createSelfSigned } from '../src/crypto/selfsigned.js';
import { mallocFigures, mallocTrim, nativeMemoryLine } from './native-memory.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};

if (process.argv[2] === 'client') {
  // the parent went away (killed, timed out): so does this client
  process.on('disconnect', () => process.exit(0));
  const [port, n, bytes, ca] = [Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.env.CA!];
  let done = 0;
  const open = (i: number): void => {
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', ca, agent: false, servername: 'localhost' }, (res) => {
      let got = 0;
      res.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= bytes && got - d.length < bytes) {
          done++;
          if (done === n) process.send!({ type: 'read' });
        }
      });
    });
    req.end();
    if (i + 1 < n) setTimeout(() => open(i + 1), 2);
  };
  open(0);
} else {
  const n = Number(arg('streams', '1000'));
  const bytes = Number(arg('bytes', '60000'));
  const mode = arg('mode', 'whole');
  const chunk = Number(arg('chunk', '16384'));
  const c = createSelfSigned('localhost', ['localhost', '127.0.0.1']);
  const mib = (b: number): string => (b / 1048576).toFixed(1);
  const line = (i: number): string => {
    const head = `{"i":${i},"x":"`;
    return `${head}${'a'.repeat(Math.max(0, bytes - head.length - 3))}"}\n`;
  };
  const before = process.memoryUsage().rss;
  const m0 = mallocFigures()!;
  let opened = 0;
  const server = createServer({ cert: c.certPem, key: c.keyPem }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const text = line(opened++);
    if (mode === 'whole') res.write(text);
    else {
      let at = 0;
      const more = (): void => {
        while (at < text.length) {
          const ok = res.write(text.slice(at, at + chunk));
          at += chunk;
          if (!ok) return void res.once('drain', more);
        }
      };
      more();
    }
  });
  server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as { port: number }).port;
    const child = fork(fileURLToPath(import.meta.url), ['client', String(port), String(n), String(bytes)], { env: { ...process.env, CA: c.certPem } });
    child.on('message', () => {
      setTimeout(() => {
        const m = mallocFigures()!;
        console.log(
          `${mode}${mode === 'chunked' ? ` ${chunk}` : ''}: ${n} streams, ${bytes} B each; malloc in use +${mib(m.inUse - m0.inUse)} MiB` +
            ` (${((m.inUse - m0.inUse) / n / 1024).toFixed(1)} KiB per stream), free ${mib(m.free)} MiB; RSS +${mib(process.memoryUsage().rss - before)} MiB` +
            ` (${((process.memoryUsage().rss - before) / n / 1024).toFixed(1)} KiB per stream)`,
        );
        console.log(`  ${nativeMemoryLine()}`);
        if (process.argv.includes('--trim')) {
          mallocTrim();
          console.log(`  after trim: RSS +${mib(process.memoryUsage().rss - before)} MiB; ${nativeMemoryLine()}`);
        }
        child.kill();
        process.exit(0);
      }, 1000);
    });
  });
}
