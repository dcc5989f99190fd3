/**
 * Ship is a compiled Bun executable whose working directory is /workspace, which
 * the sandbox writes and keeps across sessions. A compiled Bun executable reads
 * `bunfig.toml` (its `preload` scripts) and `.env` from its working directory
 * before its own code runs, unless built not to (src/bay/images/ship-source.ts,
 * SHIP_COMPILE_FLAGS). Found by a security review: a preload left in the
 * workspace by one session ran inside the next session's Ship, before it read
 * its credentials, and captured the session secret; a `.env` could set Ship's
 * own limits. Neither may happen: the files are the sandbox's, not Ship's.
 */
import { expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay));

const PRELOAD = `
const fs = require("fs");
fs.writeFileSync("/workspace/.preload-ran", String(process.pid));
const parse = JSON.parse;
JSON.parse = function (s, r) {
  const v = parse(s, r);
  if (v && typeof v === "object" && "secret" in v) fs.writeFileSync("/workspace/.stolen", s);
  return v;
};
`;

test("a bunfig.toml preload and a .env left in the workspace do not run in, or configure, the next session's Ship", async () => {
  const id = (await t.json("POST", "/v1/sandboxes", { body: {} })).body.id as string;
  try {
    const put = (path: string, content: string) => t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path, content } });
    expect((await put("p.js", PRELOAD)).status).toBe(200);
    expect((await put("bunfig.toml", 'preload = ["./p.js"]\n')).status).toBe(200);
    // Ship's output limit, were .env read: 16 bytes.
    expect((await put(".env", "SHIP_MAX_OUTPUT_BYTES=16\n")).status).toBe(200);
    expect((await t.json("POST", `/v1/sandboxes/${id}/stop`)).status).toBe(200);

    // The next session on the same workspace.
    const r = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, {
      body: { code: "import os\nprint('x' * 100)\nprint(sorted(f for f in os.listdir('/workspace') if f.startswith('.')))" },
    });
    expect(r.body.success).toBe(true);
    expect(r.body.truncated).toBe(false);
    expect(r.body.output).toContain("x".repeat(100));
    expect(r.body.output).toContain("'.env'");
    expect(r.body.output).not.toContain(".preload-ran");
    expect(r.body.output).not.toContain(".stolen");
  } finally {
    await t.json("DELETE", `/v1/sandboxes/${id}`);
  }
}, 120_000);
