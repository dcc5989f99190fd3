/**
 * The E2B-compatible API's cost: @e2b/code-interpreter's `Sandbox.create()` →
 * first `runCode("1+1")` result, against Bay's own API doing the same work
 * (`POST /v1/sandboxes` → first `python/exec`), on one Bay with an API key,
 * alternating sides. Both are cold starts (no warm pool); the difference is
 * the SDK and the E2B translation (tokens, NDJSON), not the container.
 */
import { Sandbox } from "@e2b/code-interpreter";
import { spawnBay } from "../tests/e2e/support/e2e.ts";
import { expectTwo } from "./context.ts";
import { median, ms, ratio, time, type Row } from "./stats.ts";

export async function e2bCreateToFirstResult(runs: number): Promise<Row[]> {
  const key = `e2b_${Buffer.from(crypto.getRandomValues(new Uint8Array(20))).toString("hex")}`;
  const bay = await spawnBay({ BAY_AUTH_MODE: "api_key", BAY_API_KEY: key, BAY_API_KEY_OWNER: "bench-e2b" });
  const opts = { apiKey: key, apiUrl: `${bay.url}/e2b`, sandboxUrl: `${bay.url}/e2b` };
  const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" };
  const viaSdk = async () => {
    let sb: Sandbox | undefined;
    const t = await time(async () => {
      sb = await Sandbox.create(opts);
      const r = await sb.runCode("1+1");
      if (r.text !== "2") throw new Error(`e2b runCode: unexpected result ${JSON.stringify(r.toJSON())}`);
    });
    await sb?.kill().catch(() => {});
    return t;
  };
  const viaBay = async () => {
    let id = "";
    const t = await time(async () => {
      const res = await fetch(`${bay.url}/v1/sandboxes`, { method: "POST", headers: auth, body: "{}" });
      id = ((await res.json()) as { id: string }).id;
      const ex = await fetch(`${bay.url}/v1/sandboxes/${id}/python/exec`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ code: "1+1" }),
      });
      expectTwo((await ex.json()) as object, "bay create → exec");
    });
    await fetch(`${bay.url}/v1/sandboxes/${id}`, { method: "DELETE", headers: auth }).catch(() => {});
    return t;
  };
  try {
    await viaSdk();
    await viaBay();
    const sdk: number[] = [];
    const own: number[] = [];
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) {
        sdk.push(await viaSdk());
        own.push(await viaBay());
      } else {
        own.push(await viaBay());
        sdk.push(await viaSdk());
      }
    }
    return [
      {
        bench: "E2B SDK create → first runCode",
        measure: "median, vs Bay's API create → first exec",
        runs,
        bay: ms(median(sdk)),
        direct: ms(median(own)),
        ratio: ratio(median(sdk), median(own)),
      },
    ];
  } finally {
    await bay.close();
  }
}
