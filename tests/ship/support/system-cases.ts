import { expect, test } from "bun:test";
import type { ShipClient } from "./caller.ts";

/** /health, /meta and unknown routes. */
export function systemCases(client: () => ShipClient, opts: { mountPath: string }): void {
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
    for (const cap of ["filesystem", "shell", "python"]) {
      expect(res.body.capabilities[cap].operations.length).toBeGreaterThan(0);
    }
  });

  test("system: unknown route is not_found in the error body", async () => {
    const res = await client().json("GET", "/nope");
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: { code: "not_found", message: expect.any(String), details: {} } });
  });
}
