/** Room for a code context's kernel under the sandbox's pids limit (src/ship/contexts/pids.ts). */
import { describe, expect, test } from "bun:test";
import { checkPidsRoom, PIDS_PER_KERNEL, PIDS_SPARE } from "../../src/ship/contexts/pids.ts";
import { ShipError } from "../../src/ship/errors.ts";

const reader = (current: number, max: number) => () => ({ current, max });

function refusal(fn: () => void): ShipError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ShipError);
    return err as ShipError;
  }
  throw new Error("expected a refusal");
}

describe("pids room for a kernel", () => {
  test("a kernel fits while its pids and the spare margin are free, and not one pid past that", () => {
    for (const language of ["python", "javascript", "typescript"] as const) {
      const need = PIDS_PER_KERNEL[language] + PIDS_SPARE;
      expect(() => checkPidsRoom(language, reader(100 - need, 100))).not.toThrow();
      const err = refusal(() => checkPidsRoom(language, reader(100 - need + 1, 100)));
      expect(err.code).toBe("quota_exceeded");
      expect(err.details).toEqual({ reason: "pids_limit", limit: 100, pids_in_use: 100 - need + 1 });
    }
  });

  test("pids promised to kernels still starting count as used", () => {
    const need = PIDS_PER_KERNEL.javascript + PIDS_SPARE;
    expect(() => checkPidsRoom("javascript", reader(0, need + 8))).not.toThrow();
    expect(() => checkPidsRoom("javascript", reader(0, need + 8), 8)).not.toThrow();
    expect(refusal(() => checkPidsRoom("javascript", reader(0, need + 8), 9)).code).toBe("quota_exceeded");
  });

  test("no limit to read (no pids cgroup, or `max`) never refuses; the real cgroup is read in tests/e2e/contexts.test.ts", () => {
    expect(() => checkPidsRoom("javascript", () => null)).not.toThrow();
  });
});
