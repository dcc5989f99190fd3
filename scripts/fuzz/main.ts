/**
 * `bun run fuzz`: a spec-driven fuzzer against a Bay process it starts itself
 * (loopback, its own temp libSQL database and BAY_INSTANCE_ID). Every
 * operation of openapi/bay.v1.yaml and of the E2B-compatible API
 * (openapi/e2b.v1.yaml, under /e2b), and every method of envd's Connect RPC services
 * (process.Process, filesystem.Filesystem, from their descriptors: envd-rpc.ts, about
 * ENVD_SHARE of the requests), mixed in one sequence, gets valid and hostile requests; every
 * answer is checked against the contract; Bay must stay up throughout.
 * Prints a summary, writes a JSON report, exits 1 on any finding.
 *
 *   bun run fuzz [--seed N] [--requests N] [--from N] [--seconds N] [--concurrency N] [--report FILE]
 */
import { BayUnderTest } from "../lib/bay-under-test.ts";
import { intOption, parseOptions, stringOption } from "../lib/cli-args.ts";
import { randomSeed } from "../lib/rng.ts";
import { ENVD_METHODS, ENVD_SHARE } from "./envd-rpc.ts";
import { Findings } from "./findings.ts";
import { createFixtures, deleteEverything, FixtureKeeper } from "./fixtures.ts";
import { RequestGenerator } from "./generate.ts";
import { FUZZ_SANDBOX_DOMAIN } from "./head-strategies.ts";
import { makeResolver } from "./request.ts";
import { FuzzRunner } from "./runner.ts";
import { RuntimeEvents } from "./runtime-events.ts";
import { assertContractSupported, loadContracts } from "./spec.ts";

const MiB = 1024 * 1024;
/** Bay's limits for the run: uploads small enough to send past the limit; no rate limit in the way. */
const LIMITS = { maxBodyBytes: 2 * MiB, maxUploadBytes: 4 * MiB };

const opts = parseOptions(
  process.argv.slice(2),
  [
    { name: "seed", kind: "int", help: "seed of the request sequence (default: random, printed)" },
    { name: "requests", kind: "int", help: "requests to send (default 2000)" },
    { name: "from", kind: "int", help: "first request index to send: replays a stretch of the seed's sequence (default 0)" },
    { name: "seconds", kind: "int", help: "stop sending new requests this many seconds after the start, fixtures included (default 1800)" },
    { name: "concurrency", kind: "int", help: "requests in flight at once (default 4)" },
    { name: "report", kind: "string", help: "JSON report file (default fuzz-report.json)" },
  ],
  "usage: bun run fuzz [options]",
);
const seed = intOption(opts, "seed", randomSeed());
const requests = intOption(opts, "requests", 2000);
const from = intOption(opts, "from", 0);
const seconds = intOption(opts, "seconds", 1800);
const concurrency = Math.max(1, intOption(opts, "concurrency", 4));
const reportFile = stringOption(opts, "report", "fuzz-report.json");

const contract = loadContracts();
const specWarnings = new Set<string>();
const warn = (msg: string) => specWarnings.add(msg);
assertContractSupported(contract, warn);
for (const w of specWarnings) console.log(`fuzz: spec warning: ${w}`);

const perApi = contract.apis.map((a) => `${a.name} ${contract.operations.filter((o) => o.api === a).length}`).join(", ");
console.log(
  `fuzz: seed ${seed}, up to ${requests} requests / ${seconds} s, ${contract.operations.length} operations (${perApi}), ` +
    `${ENVD_METHODS.length} envd Connect methods (~${Math.round(ENVD_SHARE * 100)} % of requests)`,
);
const bay = await BayUnderTest.launch({
  name: "fuzz",
  config: {
    limits: { max_body_bytes: LIMITS.maxBodyBytes, max_upload_bytes: LIMITS.maxUploadBytes, rate_limit_per_minute: 1_000_000 },
    e2b: { sandbox_domain: FUZZ_SANDBOX_DOMAIN },
  },
});
const findings = new Findings();
const events = new RuntimeEvents();
const started = Date.now();
let failed = false;
try {
  console.log(`fuzz: Bay ${bay.url} (pid ${bay.process.pid}, instance ${bay.instanceId})`);
  const values = await createFixtures(bay.url);
  await events.start(bay.instanceId);
  const runner = new FuzzRunner(
    bay,
    contract,
    new RequestGenerator(contract, LIMITS),
    new FixtureKeeper(values),
    makeResolver(values),
    findings,
    events,
  );
  // The budget counts from the start: fixtures (a cold start, uploads) come out of it, at least 10 s is left to fuzz.
  const fuzzSeconds = Math.max(10, seconds - (Date.now() - started) / 1000);
  await runner.run({ seed, from, requests, seconds: fuzzSeconds, concurrency, batchSize: 50 });
  await Bun.sleep(1000); // the engine's last events
  await runner.reportShipIncidents();
  // Everything deleted through Bay: what Bay then leaves (containers, volumes, upload spools) is a leak.
  await deleteEverything(bay.url, ["alice", "bob", "default"]);
  let left = await bay.leftovers();
  for (let i = 0; i < 120 && left.containers.length + left.volumes.length + left.spools.length > 0; i++) {
    await Bun.sleep(500);
    left = await bay.leftovers();
  }
  findings.leftovers = [
    ...left.containers.map((c) => `container ${c}`),
    ...left.volumes.map((v) => `volume ${v}`),
    ...left.spools.map((s) => `spool ${s}`),
  ];
} catch (e) {
  failed = true;
  console.error("fuzz: run failed:", e);
} finally {
  events.stop();
  findings.containerDeaths = events.deaths.filter((d) => d.action === "die").map((d) => d.exitCode);
  await bay.cleanup();
  const left = await bay.leftovers();
  if (left.containers.length || left.volumes.length)
    console.error(`fuzz: could not remove ${left.containers.length} containers, ${left.volumes.length} volumes`);
}
const elapsed = (Date.now() - started) / 1000;
findings.print({ seed, seconds: elapsed, requested: requests });
findings.write(reportFile, { seed, requested: requests, seconds: Math.round(elapsed), concurrency, spec_warnings: [...specWarnings] });
console.log(`fuzz: report written to ${reportFile}`);
process.exit(failed || findings.findingCount > 0 ? 1 : 0);
