/**
 * A workspace helper (du, find, rm on a volume) works for one tenant outside its sandbox's
 * limits, so it runs under small ones of its own: 128 MiB without swap, half a core, 32
 * processes, as uid 1000 with no network. Read from inside a real helper on the real
 * engine (its cgroup, v1 or v2, and its own view of itself), not from the create call.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import Docker from "dockerode";
import { HELPER_NANO_CPUS, HELPER_PIDS, helperName, removeHelper, runHelperCommand } from "../../src/bay/drivers/docker/archive.ts";
import { LabelCodec } from "../../src/bay/drivers/docker/labels.ts";
import { removeLabelled, requireDocker } from "./support/docker-fixtures.ts";
import { requireShipImages } from "./support/e2e.ts";
import { SHIP_IMAGE } from "../support/images.ts";

const RUN = crypto.randomUUID().slice(0, 8);
const LABELS = { "bay.test": "helper-limits", "bay.run": RUN };
const docker = new Docker({ socketPath: "/var/run/docker.sock" });
const codec = new LabelCodec("bay.", { test: "helper-limits", run: RUN }); // stamped as LABELS
const volume = {
  name: `bay-test-helper-limits-${RUN}`,
  labels: { owner: "tenant-a", workspace_id: `ws-${RUN}`, instance_id: `test-${RUN}` },
};

// Each limit from cgroup v2's file, else v1's; then who the helper runs as and what network it has.
const SCRIPT = `
cg=/sys/fs/cgroup
if [ -f $cg/cpu.max ]; then cpu=$(cat $cg/cpu.max); else cpu="$(cat $cg/cpu/cpu.cfs_quota_us) $(cat $cg/cpu/cpu.cfs_period_us)"; fi
if [ -f $cg/memory.max ]; then mem=$(cat $cg/memory.max); else mem=$(cat $cg/memory/memory.limit_in_bytes); fi
if [ -f $cg/pids.max ]; then pids=$(cat $cg/pids.max); else pids=$(cat $cg/pids/pids.max); fi
echo "cpu=$cpu"
echo "mem=$mem"
echo "pids=$pids"
echo "uid=$(id -u)"
echo "nets=$(ls /sys/class/net | tr '\\n' ' ')"
`;

beforeAll(async () => {
  await requireDocker(docker);
  await requireShipImages();
});
// The helpers' mount made the volume with the codec's labels, these among them.
afterAll(() => removeLabelled(docker, LABELS));

test("a helper runs under its own small limits: half a core, 128 MiB, 32 processes, uid 1000, no network", async () => {
  const name = helperName();
  let out = "";
  try {
    const res = await runHelperCommand(docker, codec, volume, {
      name,
      image: SHIP_IMAGE,
      command: ["sh", "-c", SCRIPT],
      onStdout: (chunk) => {
        out += chunk.toString("utf8");
      },
      maxStderrBytes: 4096,
      callSignal: () => AbortSignal.timeout(30_000),
      runSignal: AbortSignal.timeout(60_000),
    });
    expect({ exit: res.exitCode, stderr: res.stderr }).toEqual({ exit: 0, stderr: "" });
  } finally {
    await removeHelper(docker, name, AbortSignal.timeout(30_000));
  }
  const seen = Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).trim()]),
  );
  const [quota, period] = seen.cpu!.split(" ").map(Number);
  expect(quota! / period!).toBeCloseTo(HELPER_NANO_CPUS / 1e9, 6);
  expect(Number(seen.mem)).toBe(128 * 1024 * 1024);
  expect(Number(seen.pids)).toBe(HELPER_PIDS);
  expect(seen.uid).toBe("1000");
  expect(seen.nets).toBe("lo");
});

test("a helper's stderr reaches its reader whole, however much of it the result keeps", async () => {
  const name = helperName();
  let streamed = 0;
  let last = "";
  try {
    const res = await runHelperCommand(docker, codec, volume, {
      name,
      image: SHIP_IMAGE,
      // 200,000 lines of 4 bytes, then one that says it ended.
      command: ["sh", "-c", "yes abc | head -n 200000 >&2; echo end >&2"],
      onStdout: () => {},
      onStderr: (chunk) => {
        streamed += chunk.byteLength;
        last = (last + chunk.toString("utf8")).slice(-16);
      },
      maxStderrBytes: 4096,
      callSignal: () => AbortSignal.timeout(30_000),
      runSignal: AbortSignal.timeout(60_000),
    });
    expect({ exit: res.exitCode, kept: res.stderr.length, streamed, last }).toEqual({
      exit: 0,
      kept: 4096,
      streamed: 800_004,
      last: "abc\nabc\nabc\nend\n",
    });
  } finally {
    await removeHelper(docker, name, AbortSignal.timeout(30_000));
  }
});
