import { expect, test } from "bun:test";
import { PROOF_HEADER, proofValid, shipBearer } from "../../../src/protocol/ship/index.ts";
import type { ShipClient } from "./caller.ts";

/** /health, /meta and unknown routes. */
export function systemCases(client: () => ShipClient, opts: { mountPath: string; sessionId: string }): void {
  test("system: health says healthy with a kernel state", async () => {
    const res = await client().json("GET", "/health");
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("healthy");
    expect(["ready", "starting", "restarting"]).toContain(res.body.kernel);
  });

  test("system: meta describes runtime, workspace and capabilities", async () => {
    const res = await client().json("GET", "/meta");
    expect(res.status).toBe(200);
    expect(res.body.runtime).toMatchObject({ name: "ship", api_version: "v1" });
    expect(typeof res.body.runtime.version).toBe("string");
    expect(typeof res.body.runtime.build).toBe("object");
    expect(res.body.workspace).toEqual({ mount_path: opts.mountPath });
    expect(res.body.session).toEqual({ id: opts.sessionId });
    expect(JSON.stringify(res.body)).not.toContain(client().secret);
    for (const cap of ["filesystem", "shell", "python"]) {
      expect(res.body.capabilities[cap].operations.length).toBeGreaterThan(0);
    }
    expect(res.body.languages).toEqual(["python", "javascript", "typescript"]);
  });

  test("system: every route but /health refuses a missing or wrong session secret", async () => {
    const routes: Array<[string, string]> = [
      ["GET", "/meta"],
      ["POST", "/ipython/exec"],
      ["POST", "/shell/exec"],
      ["POST", "/code/exec"],
      ["GET", "/contexts"],
      ["POST", "/contexts"],
      ["GET", "/contexts/ctx-default-python"],
      ["DELETE", "/contexts/ctx-default-python"],
      ["POST", "/contexts/ctx-default-python/restart"],
      ["GET", "/shell/processes"],
      ["GET", "/shell/processes/proc-x"],
      ["DELETE", "/shell/processes/proc-x"],
      ["GET", "/filesystem/files?path=a"],
      ["PUT", "/filesystem/files"],
      ["DELETE", "/filesystem/files?path=a"],
      ["GET", "/filesystem/directories"],
      ["POST", "/filesystem/upload?path=a"],
      ["GET", "/filesystem/download?path=a"],
      ["GET", "/nope"],
    ];
    const secret = client().secret;
    const wrong = [undefined, "", `Bearer ${secret.slice(0, -1)}x`, `Bearer ${secret}x`, `Basic ${btoa(`ship:${secret}`)}`, secret];
    for (const [method, path] of routes) {
      for (const authorization of wrong) {
        const res = await client().unauthenticated(path, {
          method,
          headers: { "content-type": "application/json", ...(authorization === undefined ? {} : { authorization }) },
          ...(method === "POST" || method === "PUT"
            ? { body: JSON.stringify({ code: "1", command: "id", path: "a", content: "x", language: "python" }) }
            : {}),
        });
        const body = (await res.json()) as any;
        expect([method, path, res.status, body.error?.code]).toEqual([method, path, 401, "unauthorized"]);
        expect(JSON.stringify(body)).not.toContain(secret);
      }
    }
    const health = await client().unauthenticated("/health");
    expect(health.status).toBe(200);
  });

  test("system: the derived bearer key is accepted; an authenticated call's nonce is proved, errors included; no proof without the secret", async () => {
    const secret = client().secret;
    const nonce = "n0nce-" + crypto.randomUUID();
    const call = (path: string, authorization: string, method = "GET") =>
      client().unauthenticated(path, { method, headers: { authorization, "x-bay-nonce": nonce } });
    const ok = await call("/meta", `Bearer ${shipBearer(secret)}`);
    expect(ok.status).toBe(200);
    expect(proofValid(secret, nonce, ok.headers.get(PROOF_HEADER))).toBe(true);
    // The proof binds the nonce: it is no proof of another one.
    expect(proofValid(secret, `${nonce}x`, ok.headers.get(PROOF_HEADER))).toBe(false);
    const missing = await call("/nope", `Bearer ${shipBearer(secret)}`);
    expect(missing.status).toBe(404);
    expect(proofValid(secret, nonce, missing.headers.get(PROOF_HEADER))).toBe(true);
    // Not an oracle: a caller without the secret gets 401 and no proof of the nonce it chose.
    const refused = await call("/meta", `Bearer ${shipBearer(`${secret}x`)}`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get(PROOF_HEADER)).toBeNull();
    const health = await call("/health", "");
    expect(health.headers.get(PROOF_HEADER)).toBeNull();
  });

  test("system: unknown route is not_found in the error body", async () => {
    const res = await client().json("GET", "/nope");
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: { code: "not_found", message: expect.any(String), details: {} } });
  });
}
