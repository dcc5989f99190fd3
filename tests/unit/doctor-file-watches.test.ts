import { expect, test } from "bun:test";
import { configSchema } from "../../src/bay/config.ts";
import { checkFileWatches } from "../../src/bay/doctor/checks.ts";

const ctx = (host?: string) =>
  ({ config: configSchema.parse(host ? { driver: { host } } : {}), docker: {} as never }) as Parameters<typeof checkFileWatches>[0];

test("the host's inotify watches: ok with room for eight busy runtimes, a warning with its fix below, unreadable is a warning", () => {
  expect(checkFileWatches(ctx(), () => "192530\n")).toMatchObject({ status: "ok", detail: expect.stringContaining("23 sandboxes") });
  const low = checkFileWatches(ctx(), () => "8192");
  expect(low).toMatchObject({
    status: "warn",
    detail: expect.stringContaining("1 sandboxes"),
    fix: expect.stringContaining("max_user_watches"),
  });
  expect(
    checkFileWatches(ctx(), () => {
      throw new Error("EACCES");
    }).status,
  ).toBe("warn");
  expect(checkFileWatches(ctx(), () => "lots").status).toBe("warn");
  expect(checkFileWatches(ctx("tcp://10.0.0.5:2376"), () => "1").status).toBe("ok");
});
