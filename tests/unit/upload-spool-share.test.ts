/**
 * The upload spool's two caps (src/bay/api/upload-spool.ts): the bytes the whole
 * process spools at once, and each owner's share of them, so one owner cannot
 * hold the spool and turn every other owner away. And the share's default
 * (bootstrap.ts spoolShare).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UploadSpool } from "../../src/bay/api/upload-spool.ts";
import { spoolShare } from "../../src/bay/bootstrap.ts";
import { BayError } from "../../src/bay/errors.ts";

const base = mkdtempSync(join(tmpdir(), "bay-spool-share-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** What `take` threw: its code, reason and limit, or "taken". */
function attempt(take: () => void): string {
  try {
    take();
    return "taken";
  } catch (e) {
    if (!(e instanceof BayError)) throw e;
    return `${e.code} ${(e.details as { reason: string }).reason} ${(e.details as { limit_bytes: number }).limit_bytes} retry ${e.retryAfter}`;
  }
}

describe("the upload spool's caps", () => {
  test("an owner past their share is refused while another still spools; past the total, anyone is; a refused slot gives its bytes back at once", async () => {
    const spool = new UploadSpool({ baseDir: base, maxBytes: 150, maxBytesPerOwner: 100 });
    const alice = await spool.open("alice");
    expect(attempt(() => alice.take(60))).toBe("taken");
    // Her share: 60 + 50 > 100, although the spool has room. That upload is over: its 60 count no more.
    expect(attempt(() => alice.take(50))).toBe("quota_exceeded spool_share_full 100 retry 5");
    expect([spool.ownerBytes("alice"), spool.bytesInUse]).toEqual([0, 0]);
    expect(attempt(() => alice.take(1))).toBe("quota_exceeded spool_share_full 100 retry 5");
    // Her other upload goes on within her share.
    const second = await spool.open("alice");
    expect(attempt(() => second.take(41))).toBe("taken");
    // Bob has a share of his own: 100 fits beside her 41; 10 more is past the whole spool (151 > 150).
    const bob = await spool.open("bob");
    expect(attempt(() => bob.take(100))).toBe("taken");
    expect(attempt(() => bob.take(10))).toBe("quota_exceeded spool_full 150 retry 5");
    expect([spool.ownerBytes("bob"), spool.bytesInUse]).toEqual([0, 41]);
    // Releases give back exactly what is still counted, once.
    await Promise.all([alice.release(), alice.release(), bob.release(), second.release()]);
    expect([spool.ownerBytes("alice"), spool.ownerBytes("bob"), spool.bytesInUse]).toEqual([0, 0, 0]);
  });

  test("one owner's uploads in flight together past the share: the one that crosses it fails, the others complete (review s42)", async () => {
    // Four uploads of 256 against a share of 768 (three fit), arriving chunk by chunk, side by side.
    const spool = new UploadSpool({ baseDir: base, maxBytes: 4096, maxBytesPerOwner: 768 });
    const slots = await Promise.all([0, 1, 2, 3].map(() => spool.open("alice")));
    const failed = new Set<number>();
    for (let chunk = 0; chunk < 16; chunk++) {
      for (const [i, slot] of slots.entries()) {
        if (failed.has(i)) continue;
        if (attempt(() => slot.take(16)) !== "taken") failed.add(i);
      }
    }
    // Before: each failure's bytes stayed counted until its files were removed, and every other upload failed on them.
    expect(failed.size).toBe(1);
    expect(spool.ownerBytes("alice")).toBe(3 * 256);
    await Promise.all(slots.map((s) => s.release()));
    expect(spool.bytesInUse).toBe(0);
  });

  test("without a share configured, one owner may use the whole spool", async () => {
    const spool = new UploadSpool({ baseDir: base, maxBytes: 100 });
    const slot = await spool.forOwner("alice").open();
    expect(attempt(() => slot.take(100))).toBe("taken");
    expect(attempt(() => slot.take(1))).toBe("quota_exceeded spool_full 100 retry 5");
    await slot.release();
  });

  test("the share's default: half the spool, at least one largest upload, at most the spool; a configured share is kept up to the spool", () => {
    const GiB = 1024 ** 3;
    const share = (spool: number, upload: number, perOwner?: number) =>
      spoolShare({ max_spool_bytes: spool, max_upload_bytes: upload, max_spool_bytes_per_owner: perOwner });
    expect(share(4 * GiB, 1 * GiB)).toBe(2 * GiB);
    expect(share(4 * GiB, 3 * GiB)).toBe(3 * GiB);
    expect(share(1 * GiB, 2 * GiB)).toBe(1 * GiB);
    expect(share(4 * GiB, 1 * GiB, 512 * 1024 ** 2)).toBe(512 * 1024 ** 2);
    expect(share(4 * GiB, 1 * GiB, 8 * GiB)).toBe(4 * GiB);
  });
});
