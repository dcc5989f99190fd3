/**
 * Terminal tickets, in-process on a real libSQL file and without containers: a
 * ticket is single use, short-lived, for one sandbox, minted only by its owner,
 * and works across Bay replicas on one database. A GET without an upgrade shows
 * how far a request got: past authentication, it stops at "not an upgrade"
 * (400) before any container starts.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { BayConfig } from "../../src/bay/config.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import { closeWithoutContainers, expectErrorBody } from "./support/fixtures.ts";

const ALICE = { authorization: "Bearer alice-key-0123456789abcdef" };
const BOB = { authorization: "Bearer bob-key-0123456789abcdefgh" };
const config = {
  auth: {
    mode: "api_key" as const,
    api_keys: [
      { key: "alice-key-0123456789abcdef", owner: "alice" },
      { key: "bob-key-0123456789abcdefgh", owner: "bob" },
    ],
  },
  profiles: [
    { id: "python-default", image: SHIP_IMAGE },
    { id: "python-only", image: SHIP_IMAGE, capabilities: ["python"] },
  ] as unknown as BayConfig["profiles"],
};

let t: TestBay;
let replica: TestBay | null = null;
beforeEach(async () => {
  t = await createTestBay({ config });
});
afterEach(async () => {
  if (replica) await closeWithoutContainers(replica);
  replica = null;
  await closeWithoutContainers(t);
});

async function sandbox(headers = ALICE, profile?: string): Promise<string> {
  const r = await t.json("POST", "/v1/sandboxes", { headers, body: profile ? { profile } : {} });
  expect(r.status).toBe(201);
  return r.body.id;
}

async function mint(id: string, headers = ALICE, bay = t) {
  return bay.json("POST", `/v1/sandboxes/${id}/terminal/tickets`, { headers });
}

/** Opens the terminal with only a ticket (what a browser can do); no upgrade header, so it ends at 400 once through. */
const open = (id: string, ticket: string, bay = t) => bay.json("GET", `/v1/sandboxes/${id}/terminal?ticket=${encodeURIComponent(ticket)}`);

describe("terminal tickets", () => {
  test("minted by the owner: single use, for its sandbox, with the URL to open", async () => {
    const id = await sandbox();
    const m = await mint(id);
    expect(m.status).toBe(201);
    expect(m.body.ticket).toMatch(/^tkt_[A-Za-z0-9_-]{43}$/);
    expect(m.body.url).toBe(`/v1/sandboxes/${id}/terminal?ticket=${m.body.ticket}`);
    const ttl = Date.parse(m.body.expires_at) - Date.now();
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30_000);
    // Only a hash is stored.
    const rows = await t.bay.deps.stores.db.execute("SELECT * FROM terminal_tickets");
    expect(JSON.stringify(rows.rows)).not.toContain(m.body.ticket);

    const first = await open(id, m.body.ticket);
    expectErrorBody(first.res, first.body, "validation_error"); // authenticated by the ticket; only the upgrade is missing
    const again = await open(id, m.body.ticket);
    expect(again.status).toBe(401);
    expectErrorBody(again.res, again.body, "unauthorized");
  });

  test("expired, unknown or malformed: 401; for another sandbox: 404, and spent", async () => {
    const a = await sandbox();
    const b = await sandbox();
    const m = await mint(a);
    await t.bay.deps.stores.db.execute({ sql: "UPDATE terminal_tickets SET expires_at = ?", args: [Date.now() - 1] });
    expect((await open(a, m.body.ticket)).status).toBe(401);
    expect((await open(a, "tkt_doesnotexist")).status).toBe(401);
    expect((await open(a, "x".repeat(5000))).status).toBe(401);
    expect((await open(a, "")).status).toBe(401);

    const other = await mint(a);
    const wrong = await open(b, other.body.ticket);
    expect(wrong.status).toBe(404);
    expectErrorBody(wrong.res, wrong.body, "not_found");
    // Presented at the wrong door, it is burnt: not usable at the right one afterwards.
    expect((await open(a, other.body.ticket)).status).toBe(401);
  });

  test("another owner's sandbox: no ticket (404), and a ticket does not lend its owner to another sandbox", async () => {
    const alices = await sandbox(ALICE);
    const bobs = await sandbox(BOB);
    expect((await mint(alices, BOB)).status).toBe(404);
    // Alice's ticket for her sandbox cannot open Bob's.
    const m = await mint(alices);
    expect((await open(bobs, m.body.ticket)).status).toBe(404);
    // Bob's credentials cannot open Alice's terminal either.
    const r = await t.json("GET", `/v1/sandboxes/${alices}/terminal`, { headers: BOB });
    expect(r.status).toBe(404);
  });

  test("a profile without a shell: 400 capability_not_supported for the ticket and for the terminal, before any container", async () => {
    const id = await sandbox(ALICE, "python-only");
    const m = await mint(id);
    expectErrorBody(m.res, m.body, "capability_not_supported");
    const r = await t.json("GET", `/v1/sandboxes/${id}/terminal`, {
      headers: {
        ...ALICE,
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
    });
    expect(r.status).toBe(400);
    expectErrorBody(r.res, r.body, "capability_not_supported");
  });

  test("an expired sandbox: 409 for the ticket", async () => {
    const id = await sandbox();
    await t.bay.deps.stores.sandboxes.setExpiresAt(id, Date.now() - 1000);
    const m = await mint(id);
    expectErrorBody(m.res, m.body, "sandbox_expired");
  });

  test("a ticket minted on one replica opens the terminal on another (one database), once", async () => {
    replica = await createTestBay({ config, dbPath: `${t.dir}/bay.db`, instanceId: t.bay.instanceId });
    const id = await sandbox();
    const m = await mint(id);
    const onReplica = await open(id, m.body.ticket, replica);
    expect(onReplica.status).toBe(400); // accepted; only the upgrade is missing
    expect((await open(id, m.body.ticket, t)).status).toBe(401);
  });

  test("spent and expired tickets are purged as new ones are minted", async () => {
    const id = await sandbox();
    const old = await mint(id);
    await open(id, old.body.ticket);
    await t.bay.deps.stores.db.execute({ sql: "UPDATE terminal_tickets SET expires_at = ?", args: [Date.now() - 60_000] });
    await mint(id);
    const rows = await t.bay.deps.stores.db.execute("SELECT COUNT(*) AS n FROM terminal_tickets");
    expect(Number(rows.rows[0]!.n)).toBe(1);
  });
});

describe("terminal tickets in anonymous mode, from another site's page", () => {
  test("a ticket is its own authority: served cross-site; everything else cross-site is 403, minting included", async () => {
    const anon = await createTestBay({ config: { profiles: config.profiles } });
    try {
      const evil = { origin: "http://pages.example", "sec-fetch-site": "cross-site" };
      const id = (await anon.json("POST", "/v1/sandboxes", { body: {} })).body.id as string;
      const minted = await anon.json("POST", `/v1/sandboxes/${id}/terminal/tickets`);
      expect(minted.status).toBe(201);
      // The page's WebSocket with its ticket gets through (to "not an upgrade" here, without one).
      const withTicket = await anon.json("GET", minted.body.url, { headers: evil });
      expectErrorBody(withTicket.res, withTicket.body, "validation_error");
      // A made-up ticket is 401, not a way around the guard; no ticket is the guard's 403.
      const forged = await anon.json("GET", `/v1/sandboxes/${id}/terminal?ticket=tkt_forged`, { headers: evil });
      expectErrorBody(forged.res, forged.body, "unauthorized");
      const bare = await anon.json("GET", `/v1/sandboxes/${id}/terminal`, { headers: evil });
      expectErrorBody(bare.res, bare.body, "forbidden");
      const mint = await anon.json("POST", `/v1/sandboxes/${id}/terminal/tickets`, { headers: evil });
      expectErrorBody(mint.res, mint.body, "forbidden");
      // A ticket opens nothing but the terminal: elsewhere the guard still refuses.
      const other = await anon.json("GET", `/v1/sandboxes/${id}?ticket=${encodeURIComponent(minted.body.ticket)}`, { headers: evil });
      expectErrorBody(other.res, other.body, "forbidden");
    } finally {
      await closeWithoutContainers(anon);
    }
  });
});
