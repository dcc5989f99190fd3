/**
 * Rich output through Bay: on the python-data profile a matplotlib figure comes
 * back in the exec response's `data` as an `image/png` base64 entry.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { py, requireShipImages, SHIP_DATA_IMAGE, withSandbox } from "./support/e2e.ts";

let t: TestBay;
beforeAll(async () => {
  await requireShipImages([SHIP_DATA_IMAGE]);
  t = await createTestBay();
});
afterAll(async () => {
  await t?.close();
});

test("python-data: a matplotlib figure comes back as a base64 image/png in data", async () => {
  await withSandbox(
    t,
    async (id) => {
      const r = await py(t, id, "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()", 60);
      expect(r.status).toBe(200);
      expect(r.body.success).toBe(true);
      const entry = (r.body.data as Array<{ type: string; data: Record<string, string> }>).find((d) => d.data["image/png"]);
      expect(entry?.type).toBe("display_data");
      const b64 = entry!.data["image/png"]!;
      expect(b64).toMatch(/^[A-Za-z0-9+/=\s]+$/);
      const bytes = Buffer.from(b64, "base64");
      expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]); // PNG signature
      expect(bytes.byteLength).toBeGreaterThan(1000);
    },
    "python-data",
  );
}, 120_000);
