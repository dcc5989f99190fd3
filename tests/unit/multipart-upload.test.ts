/**
 * The multipart receiver on bodies whose chunks arrive in awkward places: a
 * refused path field in the same chunk as the start of the file part must end
 * the upload with the path's 400, in both receiving modes, and leave no spool.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { receiveStreaming, receiveToSpool, type ReceiveOptions } from "../../src/bay/api/multipart-upload.ts";
import { UploadSpool } from "../../src/bay/api/upload-spool.ts";
import { normalizeWorkspacePath } from "../../src/bay/domain/paths.ts";
import { BayError } from "../../src/bay/errors.ts";

const base = mkdtempSync(join(tmpdir(), "bay-multipart-test-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const spool = new UploadSpool({ baseDir: base, maxBytes: 64 * 1024 * 1024 });

const BOUNDARY = "b0undary";
const enc = (s: string) => new TextEncoder().encode(s);

/**
 * A form (path field, then a file of `size` bytes) delivered as two chunks: the
 * first ends inside the file part, the second only when the reader pulls again.
 */
function request(path: string, size: number): Request {
  const head = enc(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="path"\r\n\r\n${path}\r\n` +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = enc(`\r\n--${BOUNDARY}--\r\n`);
  const file = new Uint8Array(size).fill(7);
  const first = new Uint8Array([...head, ...file.subarray(0, size / 2)]);
  const second = new Uint8Array([...file.subarray(size / 2), ...tail]);
  const chunks = [first, second];
  const body = new ReadableStream<Uint8Array>({
    pull(ctrl) {
      const next = chunks.shift();
      if (next) ctrl.enqueue(next);
      else ctrl.close();
    },
  });
  return new Request("http://bay.test/upload", {
    method: "POST",
    headers: { "content-type": `multipart/form-data; boundary=${BOUNDARY}` },
    body,
  });
}

const options = (): ReceiveOptions => ({
  maxBytes: 1024 * 1024,
  tooLarge: () => new BayError("payload_too_large", "too large"),
  queryPath: undefined,
  normalizePath: normalizeWorkspacePath,
  spool: spool.forOwner("alice"),
});

const slots = () => readdirSync(spool.dir).length;

describe("a refused path field in the chunk where the file part starts", () => {
  for (const [label, path] of [
    ["a segment over 255 bytes", "x".repeat(256)],
    ["absolute", "/etc/passwd"],
    ["2,000 segments", `${"a/".repeat(1999)}a`],
  ] as const) {
    test(`spooled (workspace uploads): ${label} answers invalid_path`, async () => {
      const err = await receiveToSpool(request(path, 70_000), options()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BayError);
      expect((err as BayError).code).toBe("invalid_path");
      expect(slots()).toBe(0);
    });

    test(`streamed (sandbox uploads): ${label} answers invalid_path`, async () => {
      const err = await receiveStreaming(request(path, 70_000), options()).then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as BayError).code).toBe("invalid_path");
    });
  }

  test("a valid path in the same place still receives every byte", async () => {
    const up = await receiveToSpool(request("ok/f.bin", 70_000), options());
    expect(up.path).toBe("ok/f.bin");
    expect(up.size).toBe(70_000);
    const chunks: Buffer[] = [];
    for await (const c of up.read()) chunks.push(c as Buffer);
    const bytes = Buffer.concat(chunks);
    expect(bytes.byteLength).toBe(70_000);
    expect(bytes.every((b) => b === 7)).toBe(true);
    await up.release();
    expect(slots()).toBe(0);
  });
});
