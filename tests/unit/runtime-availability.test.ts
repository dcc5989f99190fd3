/** Whether the engine has each profile's OCI runtime: answers, caching and what "unknown" means. */
import { describe, expect, test } from "bun:test";
import { configSchema } from "../../src/bay/config.ts";
import { RuntimeAvailability } from "../../src/bay/domain/profiles.ts";

const profiles = configSchema.parse({
  profiles: [
    { id: "plain", image: "i" },
    { id: "gvisor", image: "i", runtime: "runsc" },
    { id: "kata", image: "i", runtime: "kata-runtime" },
  ],
}).profiles;

/** A driver whose `runtimes()` answers from a script and counts its calls. */
function engine(answers: Array<string[] | Error>) {
  let calls = 0;
  const source = {
    runtimes: async () => {
      const a = answers[Math.min(calls++, answers.length - 1)]!;
      if (a instanceof Error) throw a;
      return a;
    },
  };
  return { source, calls: () => calls };
}

describe("RuntimeAvailability", () => {
  test("each profile: its runtime registered or not; no runtime = the engine's default, always there", async () => {
    const e = engine([["runc", "runsc"]]);
    const a = await new RuntimeAvailability(e.source).of(profiles);
    expect([...a]).toEqual([
      ["plain", true],
      ["gvisor", true],
      ["kata", false],
    ]);
  });

  test("the engine is asked once per TTL, once at a time, however many callers", async () => {
    let now = 0;
    const e = engine([["runc"], ["runc", "runsc"]]);
    const r = new RuntimeAvailability(e.source, { ttlMs: 30_000, now: () => now });
    const all = await Promise.all(Array.from({ length: 20 }, () => r.of(profiles)));
    expect(e.calls()).toBe(1);
    expect(all.every((m) => m.get("gvisor") === false)).toBe(true);
    now = 29_999;
    expect((await r.of(profiles)).get("gvisor")).toBe(false);
    expect(e.calls()).toBe(1);
    now = 30_000;
    expect((await r.of(profiles)).get("gvisor")).toBe(true);
    expect(e.calls()).toBe(2);
  });

  test("an engine that does not answer → unknown (null), asked again after the shorter failure TTL", async () => {
    let now = 0;
    const e = engine([new Error("connect ENOENT /var/run/docker.sock"), ["runsc"]]);
    const r = new RuntimeAvailability(e.source, { ttlMs: 30_000, failureTtlMs: 5_000, now: () => now });
    expect((await r.of(profiles)).get("gvisor")).toBeNull();
    now = 4_999;
    expect((await r.of(profiles)).get("gvisor")).toBeNull();
    expect(e.calls()).toBe(1);
    now = 5_000;
    expect((await r.of(profiles)).get("gvisor")).toBe(true);
  });

  test("a driver without the notion: unknown for profiles naming a runtime; no engine call when none does", async () => {
    expect((await new RuntimeAvailability({}).of(profiles)).get("kata")).toBeNull();
    const e = engine([["runc"]]);
    await new RuntimeAvailability(e.source).of(profiles.filter((p) => !p.runtime));
    expect(e.calls()).toBe(0);
  });
});

test("a stuck engine: callers get unknown after waitMs, and the late answer serves the next caller", async () => {
  let answer: (r: string[]) => void = () => {};
  let calls = 0;
  const source = {
    runtimes: () => {
      calls++;
      return new Promise<string[]>((resolve) => {
        answer = resolve;
      });
    },
  };
  const r = new RuntimeAvailability(source, { waitMs: 20 });
  expect((await r.of(profiles)).get("gvisor")).toBeNull();
  answer(["runsc"]);
  await Bun.sleep(0);
  expect((await r.of(profiles)).get("gvisor")).toBe(true);
  expect(calls).toBe(1);
});
