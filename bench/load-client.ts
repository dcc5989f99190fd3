/**
 * A small HTTP/1.1 load client for the throughput benches: `conns` keep-alive
 * connections (Bun.connect, one request in flight on each), each sending the same
 * GET again as soon as its answer is complete, for `seconds`. Run as its own
 * process so the server under test and the client do not share an event loop:
 *
 *   bun bench/load-client.ts <url> <conns> <seconds> [header: value]...
 *
 * Prints one JSON line: {rps, requests, non2xx, errors}. Deliberately lean (no
 * parsing beyond what framing needs), so the client costs the same whatever
 * server it measures and the ratio reflects the servers.
 */

interface Result {
  rps: number;
  requests: number;
  non2xx: number;
  errors: number;
}

export async function load(url: string, conns: number, seconds: number, headers: string[] = []): Promise<Result> {
  const u = new URL(url);
  const request = new TextEncoder().encode(
    `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n`,
  );
  const decoder = new TextDecoder();
  let requests = 0;
  let non2xx = 0;
  let errors = 0;
  const end = performance.now() + seconds * 1000;

  const one = () =>
    new Promise<void>((resolve) => {
      let buf = "";
      const finish = (socket?: { end(): void }) => {
        socket?.end();
        resolve();
      };
      void Bun.connect({
        hostname: u.hostname,
        port: Number(u.port),
        socket: {
          open(socket) {
            socket.write(request);
          },
          data(socket, chunk) {
            buf += decoder.decode(chunk);
            for (;;) {
              const head = buf.indexOf("\r\n\r\n");
              if (head < 0) return;
              const status = Number(buf.slice(9, 12));
              const lenMatch = /\r\ncontent-length:\s*(\d+)/i.exec(buf.slice(0, head));
              let total: number;
              if (lenMatch) {
                total = head + 4 + Number(lenMatch[1]);
                if (buf.length < total) return;
              } else {
                const endChunked = buf.indexOf("\r\n0\r\n\r\n", head);
                if (endChunked < 0) return;
                total = endChunked + 7;
              }
              buf = buf.slice(total);
              requests++;
              if (status < 200 || status > 299) non2xx++;
              if (performance.now() >= end) return finish(socket);
              socket.write(request);
            }
          },
          close() {
            resolve();
          },
          error() {
            errors++;
            resolve();
          },
        },
      }).catch(() => {
        errors++;
        resolve();
      });
    });

  await Promise.all(Array.from({ length: conns }, one));
  return { rps: requests / seconds, requests, non2xx, errors };
}

if (import.meta.main) {
  const [url, conns, seconds, ...headers] = process.argv.slice(2);
  if (!url) throw new Error("usage: bun bench/load-client.ts <url> <conns> <seconds> [header: value]...");
  console.log(JSON.stringify(await load(url, Number(conns ?? 32), Number(seconds ?? 3), headers)));
}
