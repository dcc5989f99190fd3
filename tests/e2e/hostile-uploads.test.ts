/**
 * Malformed multipart uploads against a Bay process: a body that ends without
 * its closing boundary (busboy's "Unexpected end of form") once killed the
 * whole process. Each case must answer 400 in the error model, leave the
 * process serving, write no partial file, and leave no spool behind.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, startBayProcess, type BayProcess } from "../support/bay-process.ts";
import { docker, requireShipImages } from "./support/e2e.ts";
import { removeLabelled } from "./support/docker-fixtures.ts";

const BOUNDARY = "----baytest7MA4YWxkTrZu0gW";
const part = (name: string, value: string, filename?: string) =>
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ""}\r\n` +
  (filename ? "Content-Type: application/octet-stream\r\n" : "") +
  `\r\n${value}\r\n`;

/** Bodies that all lack the closing `--boundary--`. */
const TRUNCATED: Record<string, string> = {
  "path first, file cut mid-part":
    part("path", "cut.bin") + `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n` + "x".repeat(70_000),
  "file first, file cut mid-part":
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n` + "y".repeat(70_000),
  "path first, closing boundary missing": part("path", "cut.bin") + part("file", "z".repeat(1000), "f"),
  "file first, closing boundary missing": part("file", "z".repeat(1000), "f") + part("path", "cut.bin"),
  "only a path, cut": part("path", "cut.bin").slice(0, -4),
  "headers of a part cut": `--${BOUNDARY}\r\nContent-Disposition: form-da`,
};

let bay: BayProcess;
let dir: string;
const instanceId = `e2e-hostile-up-${crypto.randomUUID().slice(0, 8)}`;

async function upload(path: string, body: string): Promise<{ status: number; body: any }> {
  const res = await fetch(bay.url + path, {
    method: "POST",
    headers: { "x-owner": "alice", "content-type": `multipart/form-data; boundary=${BOUNDARY}` },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** What the Bay process keeps in its upload spool (one directory per spooled upload). */
function spools(): string[] {
  try {
    return readdirSync(join(tmpdir(), "bay-spool", String(bay.pid)));
  } catch {
    return [];
  }
}

beforeAll(async () => {
  await requireShipImages();
  dir = mkdtempSync(join(tmpdir(), "bay-hostile-up-"));
  bay = await startBayProcess({ dbPath: join(dir, "bay.db"), instanceId, dir, env: { BAY_LOG_LEVEL: "warn" } });
});

afterAll(async () => {
  await bay?.kill("SIGTERM");
  await removeLabelled(docker, { "bay.instance_id": instanceId });
  rmSync(dir, { recursive: true, force: true });
});

describe("truncated multipart bodies never stop Bay", () => {
  for (const target of ["sandbox", "workspace"] as const) {
    for (const [name, body] of Object.entries(TRUNCATED)) {
      test(`${target} upload: ${name} → 400, Bay keeps serving, nothing written`, async () => {
        const before = new Set(spools());
        const collection = target === "sandbox" ? "/v1/sandboxes" : "/v1/workspaces";
        const created = await api(bay.url, "POST", collection, {});
        expect(created.status).toBe(201);
        const id = created.body.id as string;
        const route = `${collection}/${id}/filesystem/upload`;

        const r = await upload(route, body);
        expect(r.status).toBe(400);
        expect(r.body.error.code).toBe("validation_error");
        expect(typeof r.body.error.request_id).toBe("string");

        // The same process still answers, and nothing of the cut file landed.
        expect((await api(bay.url, "GET", "/health")).status).toBe(200);
        const read = await api(bay.url, "GET", `${collection}/${id}/filesystem/files?path=cut.bin`);
        expect([404, 400]).toContain(read.status);
        if (read.status === 404) expect(read.body.error.code).toBe("file_not_found");
        expect(existsSync(join(tmpdir(), "bay-spool", String(bay.pid)))).toBe(true);
        expect(spools().filter((s) => !before.has(s))).toEqual([]);

        await api(bay.url, "DELETE", `${collection}/${id}`);
      });
    }
  }
});
