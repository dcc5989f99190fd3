/**
 * `bun run soak`: a bounded fault soak on real Docker against a Bay process it
 * starts itself. Each round writes files with known SHA-256s (uploads and text
 * writes, sandbox and workspace routes), injects one fault (container kill and
 * stop, Bay kill -9 — also mid-upload and mid-start —, OOM, fork bomb, full
 * /tmp, idle reclaim), then reads every byte of every file back and counts the
 * running containers of every sandbox. At the end it deletes everything and
 * checks that nothing labelled with its instance id, and no upload spool, is
 * left. Exits 1 on any loss, torn upload, duplicate or leak, or a file that
 * cannot be read back at the end.
 *
 *   bun run soak [--rounds N] [--seconds N] [--seed N] [--report FILE]
 */
import { SHIP_TAG } from "../../tests/support/images.ts";
import { defaultProfiles } from "../../src/bay/config.ts";
import { BayUnderTest } from "../lib/bay-under-test.ts";
import { intOption, parseOptions, stringOption } from "../lib/cli-args.ts";
import { Rng, randomSeed } from "../lib/rng.ts";
import { SoakClient } from "./client.ts";
import { DuplicateWatch, runningPerSandbox } from "./containers.ts";
import { clearTmp, FAULT_KINDS, inject } from "./faults.ts";
import { Ledger } from "./ledger.ts";
import { SoakReport } from "./report.ts";
import { createWorld, deleteEverything, IDLE_PROFILE, PROFILE, type SoakWorld } from "./world.ts";
import { writeOne } from "./writes.ts";

const opts = parseOptions(
  process.argv.slice(2),
  [
    {
      name: "rounds",
      kind: "int",
      help: `rounds, one fault each; the first ${FAULT_KINDS.length} cover every kind, from one the seed picks (default ${FAULT_KINDS.length})`,
    },
    { name: "seed", kind: "int", help: "seed of faults, targets and data (default: random, printed)" },
    {
      name: "seconds",
      kind: "int",
      help: "start no new round this many seconds after the start (at least one round runs; default: no limit)",
    },
    { name: "report", kind: "string", help: "JSON report file (default soak-report.json)" },
  ],
  "usage: bun run soak [options]",
);
const rounds = intOption(opts, "rounds", FAULT_KINDS.length);
const seed = intOption(opts, "seed", randomSeed());
const budgetSeconds = intOption(opts, "seconds", 0);
const reportFile = stringOption(opts, "report", "soak-report.json");
const MEMORY_MB = 256;
const TMPFS_MB = 16;

const base = defaultProfiles(SHIP_TAG)[0]!;
const soakProfile = { ...base, id: PROFILE, memory_mb: MEMORY_MB, tmpfs_mb: TMPFS_MB, pids_limit: 128 };
const bay = await BayUnderTest.launch({
  name: "soak",
  config: {
    profiles: [soakProfile, { ...soakProfile, id: IDLE_PROFILE, idle_timeout: 2 }],
    lifecycle: { reaper_interval: 1 },
    limits: { rate_limit_per_minute: 1_000_000, max_upload_bytes: 64 * 1024 * 1024 },
  },
});
const report = new SoakReport();
const rng = new Rng(seed);
const client = new SoakClient(bay);
const watch = new DuplicateWatch(bay.instanceId);
const started = Date.now();
let crashed = false;
console.log(`soak: seed ${seed}, ${rounds} rounds; Bay ${bay.url} (instance ${bay.instanceId})`);
try {
  const world: SoakWorld = {
    bay,
    client,
    rng,
    ledger: new Ledger(),
    sandboxes: await createWorld(client),
    memoryMb: MEMORY_MB,
    tmpfsMb: TMPFS_MB,
  };
  const volumes = world.sandboxes.map((s) => s.volume);
  const write = async (round: number, after: string, volume = rng.pick(volumes), via?: "sandbox" | "workspace") => {
    const f = await writeOne(world, volume, via);
    if (f) report.writeFailures.push({ ...f, round, after });
  };
  for (const v of volumes) for (let i = 0; i < 2; i++) await write(-1, "start", v);
  watch.start();

  for (let round = 0; round < rounds; round++) {
    if (round > 0 && budgetSeconds > 0 && Date.now() - started > budgetSeconds * 1000) {
      console.log(`soak: ${budgetSeconds} s budget spent after ${round} rounds; no new round`);
      break;
    }
    const t0 = Date.now();
    // The first rounds go through every kind once, starting at a place the seed picks (a short run covers a different stretch each time).
    const kind =
      round < FAULT_KINDS.length ? FAULT_KINDS[(round + (seed % FAULT_KINDS.length)) % FAULT_KINDS.length]! : rng.pick(FAULT_KINDS);
    watch.phase = `round ${round + 1} ${kind}`;
    for (let i = rng.int(1, 3); i > 0; i--) await write(round, "the previous round");
    const fault = await inject(kind, world, round);
    report.fault(fault, round);
    const target = world.sandboxes.find((s) => fault.target.startsWith(s.name));
    if (target) await write(round, kind, target.volume, kind === "full-tmp" ? "sandbox" : undefined);
    if (kind === "full-tmp" && target) await clearTmp(world, target);
    const v = await world.ledger.verify(client, (vol) => (rng.chance(0.75) ? vol.sandboxRoute : vol.workspaceRoute));
    report.verified(v, round);
    for (const [sandbox, ids] of await runningPerSandbox(bay.instanceId)) {
      if (ids.length > 1) report.duplicates.push({ round, sandbox, containers: ids.length });
    }
    report.rounds++;
    console.log(
      `round ${round + 1}/${rounds} ${kind} (${fault.target})${fault.effective ? "" : " [no effect]"}: ${v.files} files read, ${v.lost.length} lost, ${v.unreadable.length} unreadable [${((Date.now() - t0) / 1000).toFixed(1)} s]`,
    );
  }

  watch.phase = "final check";
  // Every file once more, through its workspace: what cannot be read now cannot be shown intact.
  const last = await world.ledger.verify(client, (vol) => vol.workspaceRoute);
  report.verified(last, rounds);
  report.unverifiable = last.unreadable;
  await deleteEverything(client);
  let left = await bay.leftovers();
  for (let i = 0; i < 120 && left.containers.length + left.volumes.length + left.spools.length > 0; i++) {
    await Bun.sleep(500);
    left = await bay.leftovers();
  }
  report.leaks = [
    ...left.containers.map((c) => `container ${c}`),
    ...left.volumes.map((v) => `volume ${v}`),
    ...left.spools.map((s) => `spool ${s}`),
  ];
  report.bytesWritten = world.ledger.bytesWritten;
  report.writes = world.ledger.writes;
} catch (e) {
  crashed = true;
  console.error("soak: run failed:", e);
} finally {
  watch.stop();
  report.sampledDuplicates = watch.seen;
  report.retried = Object.fromEntries(client.retried);
  report.uploads = Object.fromEntries(client.uploads);
  await bay.cleanup();
}
const seconds = (Date.now() - started) / 1000;
report.print({ seed, seconds });
report.write(reportFile, { seed, rounds, seconds: Math.round(seconds) });
console.log(`soak: report written to ${reportFile}`);
process.exit(crashed || report.failed ? 1 : 0);
