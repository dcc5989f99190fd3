/**
 * Hostile HTTP against a Bay process, over raw sockets (fetch would normalise
 * most of it): oversized headers and URLs, absurd Content-Lengths, bodies on
 * operations that take none, idle and half-sent connections. Each answer Bay
 * gives is in the error model with an X-Request-Id; the few that Bun's own
 * parser gives (an unknown method, a malformed request line, headers past 1 MiB)
 * never stop the process.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, startBayProcess, type BayProcess } from "../support/bay-process.ts";
import { removeLabelled } from "./support/docker-fixtures.ts";
import { docker, requireShipImages } from "./support/e2e.ts";

let bay: BayProcess;
let dir: string;
let port: number;
const instanceId = `e2e-hostile-http-${crypto.randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  await requireShipImages();
  dir = mkdtempSync(join(tmpdir(), "bay-hostile-http-"));
  bay = await startBayProcess({
    dbPath: join(dir, "bay.db"),
    instanceId,
    dir,
    config: { server: { idle_timeout: 2 } },
    env: { BAY_LOG_LEVEL: "warn" },
  });
  port = Number(new URL(bay.url).port);
});

afterAll(async () => {
  await bay?.kill("SIGTERM");
  await removeLabelled(docker, { "bay.instance_id": instanceId });
  rmSync(dir, { recursive: true, force: true });
});

/** Sends raw bytes; resolves with what came back by the time the server closed (or `waitMs` passed). */
function raw(bytes: string, waitMs = 5_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = "";
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      resolve({ text, closed });
    };
    void Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write(bytes);
        },
        data(_s, d) {
          text += d.toString();
        },
        close() {
          finish(true);
        },
        error() {
          finish(true);
        },
      },
    });
    setTimeout(() => finish(false), waitMs);
  });
}

/** Status and JSON body of a raw HTTP/1.1 answer (Connection: close requests). */
function parse(answer: string): { status: number; headers: string; body: any } {
  const [head = "", ...rest] = answer.split("\r\n\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  let body: any = null;
  try {
    body = JSON.parse(rest.join("\r\n\r\n"));
  } catch {
    body = rest.join("\r\n\r\n");
  }
  return { status, headers: head.toLowerCase(), body };
}

async function alive(): Promise<void> {
  expect((await api(bay.url, "GET", "/health")).status).toBe(200);
}

describe("answers Bay gives are in the error model", () => {
  test("a 70 KB header and a 70 KB URL: 400 validation_error with a request id (not Bun's bare 431)", async () => {
    for (const request of [
      `GET /v1/sandboxes HTTP/1.1\r\nHost: localhost\r\nX-Owner: alice\r\nX-Big: ${"a".repeat(70_000)}\r\nConnection: close\r\n\r\n`,
      `GET /v1/sandboxes?pad=${"b".repeat(70_000)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
    ]) {
      const r = parse((await raw(request)).text);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("validation_error");
      expect(r.headers).toContain(`x-request-id: ${r.body.error.request_id.toLowerCase()}`);
    }
    await alive();
  });

  test("HTTP/1.0 without Host: 400 validation_error on every path (Bun hands the app a relative URL); with Host, served", async () => {
    for (const path of ["/docs", "/v1/sandboxes", "/health", "/mcp"]) {
      const r = parse((await raw(`GET ${path} HTTP/1.0\r\nX-Owner: alice\r\n\r\n`)).text.replace(/^HTTP\/1\.0/, "HTTP/1.1"));
      expect([path, r.status, r.body.error?.code]).toEqual([path, 400, "validation_error"]);
      expect(r.headers).toContain(`x-request-id: ${r.body.error.request_id.toLowerCase()}`);
    }
    const ok = parse(
      (await raw("GET /v1/sandboxes HTTP/1.0\r\nHost: localhost\r\nX-Owner: alice\r\n\r\n")).text.replace(/^HTTP\/1\.0/, "HTTP/1.1"),
    );
    expect(ok.status).toBe(200);
    expect(Array.isArray(ok.body.items)).toBe(true);
    await alive();
  });

  test("an absurd Content-Length on a JSON route: 413 payload_too_large in the error model", async () => {
    const r = parse(
      (
        await raw(
          "POST /v1/sandboxes HTTP/1.1\r\nHost: localhost\r\nX-Owner: alice\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n{}",
        )
      ).text,
    );
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("payload_too_large");
    expect(r.headers).toContain("x-request-id:");
    await alive();
  });

  test("a 3 MiB body on operations that take none is not read: they answer as without it", async () => {
    const created = await api(bay.url, "POST", "/v1/sandboxes", {});
    const id = created.body.id as string;
    const big = "x".repeat(3 * 1024 * 1024);
    for (const [method, path, expected] of [
      ["POST", `/v1/sandboxes/${id}/keepalive`, 200],
      ["POST", `/v1/sandboxes/${id}/stop`, 200],
      ["DELETE", `/v1/sandboxes/${id}`, 204],
    ] as const) {
      const res = await fetch(`${bay.url}${path}`, { method, headers: { "x-owner": "alice", "content-type": "text/plain" }, body: big });
      expect([method, path, res.status]).toEqual([method, path, expected]);
      expect(res.headers.get("x-request-id")).toBeTruthy();
      await res.body?.cancel();
    }
    await alive();
  });
});

describe("connections cannot be held forever", () => {
  test("an idle connection, and one that sends half its headers, are closed after server.idle_timeout", async () => {
    const idle = await raw("", 15_000);
    expect(idle.closed).toBe(true);
    const half = await raw("GET /v1/sandboxes HTTP/1.1\r\nHost: localhost\r\nX-Ow", 15_000);
    expect(half.closed).toBe(true);
    await alive();
  });

  test("an exec that outlasts the idle timeout still answers (its connection has Bay's own deadline)", async () => {
    const created = await api(bay.url, "POST", "/v1/sandboxes", {});
    const id = created.body.id as string;
    const r = await api(bay.url, "POST", `/v1/sandboxes/${id}/shell/exec`, { command: "sleep 4; echo slept", timeout: 30 });
    expect(r.status).toBe(200);
    expect(r.body.output).toBe("slept\n");
    await api(bay.url, "DELETE", `/v1/sandboxes/${id}`);
  });
});

describe("what Bun's parser answers itself never stops Bay", () => {
  test("an unknown method, `*` as the target, a garbage request line and 2 MiB of headers", async () => {
    for (const request of [
      "FOO /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
      "GET * HTTP/1.1\r\nHost: localhost\r\n\r\n",
      "GARBAGE\r\n\r\n",
      `GET /health HTTP/1.1\r\nHost: localhost\r\nX-Huge: ${"h".repeat(2 * 1024 * 1024)}\r\n\r\n`,
    ]) {
      const r = await raw(request);
      // Bun answers these before any request exists (no body, no request id), or closes.
      if (r.text) expect(r.text).toMatch(/^HTTP\/1\.1 4\d\d /);
      await alive();
    }
  });
});
