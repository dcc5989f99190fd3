/**
 * E2B's `getHost(port)` against a real Bay on Docker, with the official SDK
 * (e2b 2.51.0) unmodified: Bay is started with e2b.sandbox_domain =
 * localhost:{its port}, so the SDK's `{port}-{id}.{domain}` resolves to Bay
 * (`*.localhost` is loopback), and servers started in real sandboxes
 * (tests/e2e/fixtures/port-server.py, ws-server.py) answer there: with the
 * traffic token for a private sandbox (Bay's default), without one for a sandbox
 * created with allowPublicTraffic, over HTTP and WebSockets. Hostile cases: no
 * token, a neighbour's token, forged answer headers, cookies for the shared domain.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Sandbox } from "e2b";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pollUntil } from "../support/harness.ts";
import { within } from "../support/within.ts";
import { type BayProcess, freePort, requireShipImages, SHIP_DATA_IMAGE, SHIP_IMAGE, spawnBay } from "./support/e2e.ts";

const KEY = `e2b_${"b2".repeat(20)}`;
/** The owner's open-stream slots in this Bay: few, so the test fills them (the SDK's six background commands hold six of the owner's). */
const SLOTS = 10;
const fixture = (name: string) => readFileSync(join(import.meta.dir, "fixtures", name), "utf8");
let bay: BayProcess;
let domain: string;
let priv: Sandbox;
let pub: Sandbox;
/** A second public sandbox: all visitors together have at most PUBLIC_STREAMS. */
let pub2: Sandbox;
const PUBLIC_STREAMS = SLOTS + 2;

async function startServers(sb: Sandbox, token?: string): Promise<void> {
  await within(
    20_000,
    "write fixtures",
    sb.files.write([
      { path: "port-server.py", data: fixture("port-server.py") },
      { path: "ws-server.py", data: fixture("ws-server.py") },
    ]),
  );
  await within(20_000, "start http", sb.commands.run("python3 port-server.py 8080 0.0.0.0", { background: true }));
  await within(20_000, "start ws", sb.commands.run("python3 ws-server.py 8090", { background: true }));
  const headers: Record<string, string> = token ? { "e2b-traffic-access-token": token } : {};
  await pollUntil(
    () => fetch(`http://${sb.getHost(8080)}/echo`, { headers }).then((r) => r.status),
    (s) => s === 200,
    30_000,
    "http server",
  );
  await pollUntil(
    () => fetch(`http://${sb.getHost(8090)}/`, { headers }).then((r) => r.status),
    (s) => s === 404,
    30_000,
    "ws server",
  );
}

/** Opens a WebSocket and resolves once it is open ("open") or refused ("refused"). */
function openSocket(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; state: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers } as never);
    ws.onopen = () => resolve({ ws, state: "open" });
    ws.onerror = () => resolve({ ws, state: "refused" });
  });
}

/** Opens a WebSocket and sends `text`; resolves with the echo (after the server's greeting), or with how the handshake failed. */
function echo(url: string, text: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers } as never);
    const timer = setTimeout(() => resolve("timeout"), 20_000);
    ws.onopen = () => ws.send(text);
    let greeted = false;
    ws.onmessage = (e) => {
      if (!greeted) {
        greeted = true;
        return;
      }
      clearTimeout(timer);
      resolve(String(e.data));
      ws.close();
    };
    ws.onerror = () => {
      clearTimeout(timer);
      resolve("refused");
    };
  });
}

beforeAll(async () => {
  await requireShipImages([SHIP_IMAGE, SHIP_DATA_IMAGE]);
  const port = freePort();
  domain = `localhost:${port}`;
  const config = join(mkdtempSync(join(tmpdir(), "bay-hosts-")), "bay.yaml");
  writeFileSync(config, `limits: { max_open_streams_per_owner: ${SLOTS} }\ne2b: { max_public_streams: ${PUBLIC_STREAMS} }\n`);
  bay = await spawnBay(
    { BAY_CONFIG: config, BAY_AUTH_MODE: "api_key", BAY_API_KEY: KEY, BAY_API_KEY_OWNER: "alice", BAY_E2B_SANDBOX_DOMAIN: domain },
    { port },
  );
  process.env.E2B_API_URL = `${bay.url}/e2b`;
  process.env.E2B_SANDBOX_URL = `${bay.url}/e2b`;
  process.env.E2B_API_KEY = KEY;
  priv = await within(60_000, "create private", Sandbox.create());
  pub = await within(60_000, "create public", Sandbox.create({ network: { allowPublicTraffic: true } }));
  pub2 = await within(60_000, "create public 2", Sandbox.create({ network: { allowPublicTraffic: true } }));
  await Promise.all([startServers(priv, priv.trafficAccessToken), startServers(pub), startServers(pub2)]);
}, 180_000);

afterAll(async () => {
  for (const sb of [priv, pub, pub2]) await sb?.kill().catch(() => {});
  await bay?.close();
});

describe("getHost(port) with the official SDK", () => {
  test("the SDK names {port}-{id}.{domain}; a private sandbox's server answers with its traffic token only", async () => {
    expect(priv.getHost(8080)).toBe(`8080-${priv.sandboxId}.${domain}`);
    expect(priv.trafficAccessToken).toStartWith(`ta_${priv.sandboxId}_`);
    const ok = await fetch(`http://${priv.getHost(8080)}/echo/a%2Fb?q=1`, {
      headers: { "e2b-traffic-access-token": priv.trafficAccessToken! },
    });
    expect(ok.status).toBe(200);
    const seen = (await ok.json()) as { path: string; headers: Record<string, string> };
    expect(seen.path).toBe("/echo/a%2Fb?q=1");
    // The server sees its own address as Host, and never the token.
    expect(seen.headers.host).toBe("127.0.0.1:8080");
    expect(seen.headers["e2b-traffic-access-token"]).toBeUndefined();

    const none = await fetch(`http://${priv.getHost(8080)}/echo`);
    expect(none.status).toBe(403);
    expect(((await none.json()) as { error: { details: { reason: string } } }).error.details.reason).toBe("traffic_token_required");
    // A neighbour's token, and a key of Bay's, are not this sandbox's.
    const neighbour = await fetch(`http://${priv.getHost(8080)}/echo`, {
      headers: { "e2b-traffic-access-token": pub.trafficAccessToken! },
    });
    expect(neighbour.status).toBe(401);
    const apiKey = await fetch(`http://${priv.getHost(8080)}/echo`, { headers: { "x-api-key": KEY, authorization: `Bearer ${KEY}` } });
    expect(apiKey.status).toBe(403);
  });

  test("a public sandbox answers anyone, on an origin of its own: its cookies, and nothing forged passes for Bay's", async () => {
    const page = await fetch(`http://${pub.getHost(8080)}/forge`);
    expect(page.status).toBe(200);
    expect(page.headers.getSetCookie()).toEqual(["sid=stolen; Path=/"]);
    expect(page.headers.get("x-bay-upstream")).toBe("200");
    expect(page.headers.get("x-ship-proof")).toBeNull();
    expect(page.headers.get("access-control-allow-origin")).toBe("*");
    expect(page.headers.get("content-security-policy")).toBeNull();
    const again = await fetch(`http://${pub.getHost(8080)}/echo`, { headers: { cookie: "sid=stolen" } });
    expect(((await again.json()) as { headers: Record<string, string> }).headers.cookie).toBe("sid=stolen");
    // Nothing is listening on 8081: Bay's error model, not a hang.
    const closed = await fetch(`http://${pub.getHost(8081)}/`);
    expect(closed.status).toBe(409);
  });

  test("WebSockets: a public sandbox's echo; a private one's with its token, refused without", async () => {
    expect(await echo(`ws://${pub.getHost(8090)}/ws`, "hello public")).toBe("hello public");
    expect(await echo(`ws://${priv.getHost(8090)}/ws`, "hello private", { "e2b-traffic-access-token": priv.trafficAccessToken! })).toBe(
      "hello private",
    );
    expect(await echo(`ws://${priv.getHost(8090)}/ws`, "no token")).toBe("refused");
  });

  test("visitors of a public sandbox hold its own open-stream slots, never its owner's, and all visitors together are capped", async () => {
    const held: WebSocket[] = [];
    try {
      for (let i = 0; i < SLOTS; i++) {
        // A socket the last test closed may give its slot back a moment later.
        const { ws } = await pollUntil(
          () => openSocket(`ws://${pub.getHost(8090)}/ws`),
          (o) => o.state === "open",
          10_000,
          `socket ${i}`,
        );
        held.push(ws);
      }
      // The visitors' share is full ...
      const over = await fetch(`http://${pub.getHost(8080)}/echo`);
      expect(over.status).toBe(429);
      expect(((await over.json()) as { error: { message: string } }).error.message).toContain("public sandbox's visitors");
      // ... and the owner's are all free: its own calls and its token's.
      const own = await fetch(`${bay.url}/v1/sandboxes/${priv.sandboxId}/ports/8080/echo`, { headers: { authorization: `Bearer ${KEY}` } });
      expect(own.status).toBe(200);
      const token = await fetch(`http://${pub.getHost(8080)}/echo`, { headers: { "e2b-traffic-access-token": pub.trafficAccessToken! } });
      expect(token.status).toBe(200);
      // Another public sandbox's visitors have their own share, up to the cap of all visitors on this process.
      for (let i = SLOTS; i < PUBLIC_STREAMS; i++) {
        const { ws, state } = await openSocket(`ws://${pub2.getHost(8090)}/ws`);
        held.push(ws);
        expect(state).toBe("open");
      }
      const all = await fetch(`http://${pub2.getHost(8080)}/echo`);
      expect(all.status).toBe(429);
      expect(((await all.json()) as { error: { message: string } }).error.message).toContain("all public sandboxes' visitors");
    } finally {
      for (const ws of held) ws.close();
    }
    // Given back as the visitors leave.
    await pollUntil(
      () => fetch(`http://${pub.getHost(8080)}/echo`).then((r) => r.status),
      (s) => s === 200,
      30_000,
      "slots back",
    );
  });

  test("Bay's API is not served under the domain; it still is at Bay's own name", async () => {
    const under = await fetch(`http://api.${domain}/e2b/v2/sandboxes`, { headers: { "x-api-key": KEY } });
    expect(under.status).toBe(404);
    const own = await fetch(`${bay.url}/e2b/v2/sandboxes`, { headers: { "x-api-key": KEY } });
    expect(own.status).toBe(200);
  });

  // Last: it stops the public sandbox.
  test("a request never starts a stopped sandbox: 409 port_closed, and it stays stopped", async () => {
    const stop = await fetch(`${bay.url}/v1/sandboxes/${pub.sandboxId}/stop`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(stop.status).toBe(200);
    const r = await fetch(`http://${pub.getHost(8080)}/echo`);
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: { details: { reason: string } } }).error.details.reason).toBe("port_closed");
    const after = await fetch(`${bay.url}/v1/sandboxes/${pub.sandboxId}`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(((await after.json()) as { status: string }).status).toBe("idle");
  });
});
