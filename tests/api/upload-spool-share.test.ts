/**
 * Each owner's share of Bay's upload spool (`limits.max_spool_bytes_per_owner`),
 * through the API: an owner whose uploads hold their share (here one that stops
 * sending halfway) gets 429 `spool_share_full` with Retry-After for the next one,
 * while another owner still uploads; past the whole spool anyone gets `spool_full`.
 * Before the share, one owner's stalled uploads turned every owner away.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { pollUntil } from "../support/harness.ts";
import { createMemoryBay, type MemoryBay } from "./support/memory-bay.ts";

const MiB = 1024 * 1024;
/** The owners `X-Owner: alice` / `bob` name in anonymous mode. */
const [ALICE, BOB] = ["anon:alice", "anon:bob"];
let t: MemoryBay;

beforeAll(async () => {
  t = await createMemoryBay({
    config: { limits: { max_upload_bytes: 2 * MiB, max_spool_bytes: 3 * MiB, max_spool_bytes_per_owner: 2 * MiB } },
  });
});
afterAll(async () => {
  await t.close();
  t.engine.shutdown();
});

const workspace = async (owner: string) => (await t.json("POST", "/v1/workspaces", { body: {}, owner })).body.id as string;

/** A raw workspace upload of `owner`'s; its body is `body`. */
const upload = (owner: string, ws: string, path: string, body: BodyInit) =>
  t.bay.app.request(`/v1/workspaces/${ws}/filesystem/upload?path=${path}`, {
    method: "POST",
    headers: { "x-owner": owner, "content-type": "application/octet-stream" },
    body,
    duplex: "half",
  } as RequestInit);

/** A body that sends `first` bytes, then nothing until `finish()`, then `rest` more. */
function stalled(first: number, rest: number): { body: ReadableStream<Uint8Array>; finish(): void } {
  let finish = () => {};
  const gate = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let sent = false;
  return {
    body: new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        if (!sent) {
          sent = true;
          ctrl.enqueue(new Uint8Array(first).fill(0x61));
          return;
        }
        await gate;
        ctrl.enqueue(new Uint8Array(rest).fill(0x62));
        ctrl.close();
      },
    }),
    finish,
  };
}

async function refusal(res: Response): Promise<{ status: number; reason: unknown; limit: unknown; retryAfter: string | null }> {
  const { error } = (await res.json()) as { error: { code: string; details?: { reason?: unknown; limit_bytes?: unknown } } };
  expect(error.code).toBe("quota_exceeded");
  return {
    status: res.status,
    reason: error.details?.reason,
    limit: error.details?.limit_bytes,
    retryAfter: res.headers.get("retry-after"),
  };
}

describe("an owner's share of the upload spool", () => {
  test("one owner's stalled uploads hold their share: their next is 429, another owner's lands; past the spool, anyone's is 429", async () => {
    const spool = t.bay.deps.uploadSpool;
    const [aliceWs, aliceWs2, bobWs] = [await workspace("alice"), await workspace("alice"), await workspace("bob")];
    // Alice starts an upload and stops sending after 1.5 MiB: Bay holds those bytes in its spool.
    const slow = stalled(1.5 * MiB, 0.25 * MiB);
    const pending = upload("alice", aliceWs, "slow.bin", slow.body);
    await pollUntil(() => spool.ownerBytes(ALICE) >= 1.5 * MiB, Boolean, 10_000, "her bytes in the spool");

    // Her next upload would take her past her 2 MiB share, though the 3 MiB spool has room.
    const mine = await upload("alice", aliceWs2, "second.bin", new Uint8Array(MiB));
    expect(await refusal(mine)).toEqual({ status: 429, reason: "spool_share_full", limit: 2 * MiB, retryAfter: "5" });
    // Bob's does not count against hers.
    const his = await upload("bob", bobWs, "b.bin", new Uint8Array(MiB).fill(0x63));
    expect(his.status).toBe(200);
    const stored = await t.call("GET", `/v1/workspaces/${bobWs}/filesystem/download?path=b.bin`, { owner: "bob" });
    expect((await stored.arrayBuffer()).byteLength).toBe(MiB);
    // 1.5 MiB held + 1.75 MiB is past the whole spool: refused as full, whoever asks.
    const big = await upload("bob", bobWs, "big.bin", new Uint8Array(1.75 * MiB));
    expect(await refusal(big)).toEqual({ status: 429, reason: "spool_full", limit: 3 * MiB, retryAfter: "5" });
    expect(spool.ownerBytes(BOB)).toBe(0);

    // Her stalled upload completes and frees her share: she uploads again.
    slow.finish();
    expect((await pending).status).toBe(200);
    expect(spool.ownerBytes(ALICE)).toBe(0);
    const again = await upload("alice", aliceWs2, "second.bin", new Uint8Array(MiB));
    expect(again.status).toBe(200);
    expect(spool.bytesInUse).toBe(0);
    // Nothing of the refused uploads was stored.
    const listing = await t.json("GET", `/v1/workspaces/${bobWs}/filesystem/directories?path=.`, { owner: "bob" });
    expect((listing.body.entries as Array<{ name: string }>).map((e) => e.name).sort()).toEqual(["b.bin"]);
  }, 60_000);
});
