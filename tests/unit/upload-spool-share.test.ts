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
  test("an owner past their share is refused while another still spools; past the total, anyone is", async () => {
    const spool = new UploadSpool({ baseDir: base, maxBytes: 150, maxBytesPerOwner: 100 });
    const alice = await spool.open("alice");
    const bob = await spool.open("bob");
    expect(attempt(() => alice.take(60))).toBe("taken");
    // Her share: 60 + 50 > 100, although the spool has room.
    expect(attempt(() => alice.take(50))).toBe("quota_exceeded spool_share_full 100 retry 5");
    const second = await spool.open("alice");
    expect(attempt(() => second.take(41))).toBe("quota_exceeded spool_share_full 100 retry 5");
    expect(attempt(() => second.take(40))).toBe("taken");
    expect(spool.ownerBytes("alice")).toBe(100);
    // Bob's share is his own: 40 fits; 20 more is within his share but past the total (160 > 150).
    expect(attempt(() => bob.take(40))).toBe("taken");
    expect(attempt(() => bob.take(20))).toBe("quota_exceeded spool_full 150 retry 5");
    expect(spool.bytesInUse).toBe(140);
    // A refused take counted nothing; a release gives back exactly what its slot took.
    await alice.release();
    await alice.release();
    expect([spool.ownerBytes("alice"), spool.bytesInUse]).toEqual([40, 80]);
    expect(attempt(() => bob.take(20))).toBe("taken");
    await Promise.all([second.release(), bob.release()]);
    expect([spool.ownerBytes("alice"), spool.ownerBytes("bob"), spool.bytesInUse]).toEqual([0, 0, 0]);
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
