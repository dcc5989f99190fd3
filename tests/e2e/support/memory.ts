/**
 * Bay's resident memory while a file passes through it: one upload and one
 * download of `sizeMiB` generated MiB through a Bay subprocess, sampled every
 * 20 ms. Shared by the streaming test (which compares sizes) and the memory
 * benchmark (which prints the absolute numbers).
 */
import { chunkOf, rssBytes } from "./e2e.ts";

const MiB = 1024 * 1024;

/** Samples a process' RSS every 20 ms until stopped; returns the peak. */
function sampler(pid: number) {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await rssBytes(pid).catch(() => 0));
      await Bun.sleep(20);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** multipart/form-data: `path`, then `sizeMiB` pseudo-random MiB chunks as `file`; hashes what it sends. */
function generatedUpload(path: string, sizeMiB: number) {
  const boundary = `----e2e${crypto.randomUUID().replace(/-/g, "")}`;
  const enc = new TextEncoder();
  const hasher = new Bun.CryptoHasher("sha256");
  let i = -1;
  const body = new ReadableStream<Uint8Array>({
    pull(ctrl) {
      if (i === -1) {
        ctrl.enqueue(
          enc.encode(
            `--${boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n${path}\r\n` +
              `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
          ),
        );
      } else if (i < sizeMiB) {
        const chunk = chunkOf(i, MiB);
        hasher.update(chunk);
        ctrl.enqueue(chunk);
      } else {
        ctrl.enqueue(enc.encode(`\r\n--${boundary}--\r\n`));
        ctrl.close();
      }
      i++;
    },
  });
  return { body, contentType: `multipart/form-data; boundary=${boundary}`, digest: () => hasher.digest("hex") };
}

export interface TransferMemory {
  baseline: number;
  /** Peak RSS over the baseline during the upload / the download, bytes. */
  growthUp: number;
  growthDown: number;
}

/**
 * Creates a sandbox on the Bay at `url` (pid `pid`) as `owner`, warms both paths with a
 * small file, then uploads and downloads `sizeMiB` MiB, checking size and hash.
 * Throws on any wrong answer; always deletes the sandbox.
 */
export async function measureTransfer(
  url: string,
  pid: number,
  owner: string | Record<string, string>,
  sizeMiB: number,
): Promise<TransferMemory> {
  // An owner name (anonymous mode), or the headers that authenticate (an API key).
  const headers: Record<string, string> = typeof owner === "string" ? { "x-owner": owner } : owner;
  const created = await fetch(`${url}/v1/sandboxes`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: "{}",
  });
  if (created.status !== 201) throw new Error(`create sandbox: ${created.status} ${await created.text()}`);
  const id = ((await created.json()) as { id: string }).id;
  const base = `${url}/v1/sandboxes/${id}/filesystem`;
  try {
    const warm = new FormData();
    warm.append("path", "warm.bin");
    warm.append("file", new Blob([chunkOf(999, 64 * 1024)]), "warm.bin");
    const w = await fetch(`${base}/upload`, { method: "POST", headers, body: warm });
    if (w.status !== 200) throw new Error(`warm-up upload: ${w.status} ${await w.text()}`);
    const wd = await (await fetch(`${base}/download?path=warm.bin`, { headers })).arrayBuffer();
    if (wd.byteLength !== 64 * 1024) throw new Error(`warm-up download: ${wd.byteLength} bytes`);
    const baseline = await rssBytes(pid);

    const up = generatedUpload(`big/${sizeMiB}.bin`, sizeMiB);
    let s = sampler(pid);
    const res = await fetch(`${base}/upload`, {
      method: "POST",
      headers: { ...headers, "content-type": up.contentType },
      body: up.body,
      duplex: "half",
    } as RequestInit);
    const upText = await res.text();
    const upPeak = await s.stop();
    if (res.status !== 200) throw new Error(`upload: ${res.status} ${upText}`);
    const upBody = JSON.parse(upText) as { size: number };
    if (upBody.size !== sizeMiB * MiB) throw new Error(`upload stored ${upBody.size} bytes, sent ${sizeMiB * MiB}`);

    s = sampler(pid);
    const down = await fetch(`${base}/download?path=big/${sizeMiB}.bin`, { headers });
    if (down.status !== 200) throw new Error(`download: ${down.status} ${await down.text()}`);
    const hasher = new Bun.CryptoHasher("sha256");
    let received = 0;
    for await (const chunk of down.body as unknown as AsyncIterable<Uint8Array>) {
      hasher.update(chunk);
      received += chunk.byteLength;
    }
    const downPeak = await s.stop();
    if (received !== sizeMiB * MiB) throw new Error(`download: got ${received} bytes, want ${sizeMiB * MiB}`);
    if (hasher.digest("hex") !== up.digest()) throw new Error("download: content differs from what was uploaded");
    return { baseline, growthUp: upPeak - baseline, growthDown: downPeak - baseline };
  } finally {
    await fetch(`${url}/v1/sandboxes/${id}`, { method: "DELETE", headers }).catch(() => {});
  }
}

/**
 * The same for a write through envd's `POST /files` (what the E2B SDKs' `files.write`
 * sends): an E2B sandbox created with the API key `apiKey`, a small write to warm,
 * then one `sizeMiB` MiB multipart write, read back and hashed. Answers the peak RSS
 * growth during the write, bytes. Always kills the sandbox.
 */
export async function measureE2bWrite(url: string, pid: number, apiKey: string, sizeMiB: number): Promise<number> {
  const created = await fetch(`${url}/e2b/v2/sandboxes`, {
    method: "POST",
    headers: { "x-api-key": apiKey, "content-type": "application/json" },
    body: JSON.stringify({ templateID: "base" }),
  });
  if (created.status !== 201) throw new Error(`E2B create: ${created.status} ${await created.text()}`);
  const sb = (await created.json()) as { sandboxID: string; envdAccessToken: string };
  const envd = { "e2b-sandbox-id": sb.sandboxID, "x-access-token": sb.envdAccessToken };
  const target = "/home/user/big.bin";
  try {
    const warm = new FormData();
    warm.append("file", new Blob([chunkOf(998, 64 * 1024)]), "/home/user/warm.bin");
    const w = await fetch(`${url}/e2b/files`, { method: "POST", headers: envd, body: warm });
    if (w.status !== 200) throw new Error(`E2B warm-up write: ${w.status} ${await w.text()}`);
    const baseline = await rssBytes(pid);
    const up = generatedUpload("ignored", sizeMiB);
    const s = sampler(pid);
    const res = await fetch(`${url}/e2b/files?path=${encodeURIComponent(target)}`, {
      method: "POST",
      headers: { ...envd, "content-type": up.contentType },
      body: up.body,
      duplex: "half",
    } as RequestInit);
    const text = await res.text();
    const peak = await s.stop();
    if (res.status !== 200) throw new Error(`E2B write: ${res.status} ${text}`);
    const back = await fetch(`${url}/e2b/files?path=${encodeURIComponent(target)}`, { headers: envd });
    const hasher = new Bun.CryptoHasher("sha256");
    for await (const chunk of back.body as unknown as AsyncIterable<Uint8Array>) hasher.update(chunk);
    if (hasher.digest("hex") !== up.digest()) throw new Error("E2B write: the file read back differs from what was written");
    return peak - baseline;
  } finally {
    await fetch(`${url}/e2b/sandboxes/${sb.sandboxID}`, { method: "DELETE", headers: { "x-api-key": apiKey } }).catch(() => {});
  }
}
