/**
 * Bay's own work per exec, without a process hop: the same `1+1` handed to a Bay
 * built in this process (its app's `fetch`, API-key auth, access log on, the
 * real Docker driver and Ship) against the same call straight to that sandbox's
 * Ship, pair by pair on one warm sandbox. What is left of a pair is Bay's code:
 * routing, auth, rate limit, validation, the lifecycle's checks, the Ship
 * client, the relay and the bookkeeping after the answer (and building the
 * Request, which Bun.serve does natively for a served Bay: this errs high).
 *
 * The served exec rows add the hop into Bay's HTTP server: a second process on
 * the path, which on this machine costs what the bare proxies beside them show.
 */
import { batchedStderr, createLogger } from "../src/bay/logger.ts";
import { createTestBay } from "../tests/support/harness.ts";
import { directExec, expectTwo, shipOf } from "./context.ts";
import { median, ms, quantile, type Row, timedPair } from "./stats.ts";

/** Calls before the measured pairs: as many as the served Bays get (see exec-overhead.ts). */
const WARM_UP_CALLS = Number(process.env.BENCH_EXEC_WARMUP ?? 20_000);

/**
 * A Bay built in this process as the served one is (API-key auth, access log on, lines
 * formatted and batched, the batch going nowhere), with one sandbox and its `1+1`
 * through the app's `fetch` (not yet run: the first call starts the session).
 */
export async function inProcessBay() {
  const t = await createTestBay({
    // Lines are formatted and batched as a served Bay's are; the batch goes nowhere.
    logger: createLogger("info", batchedStderr({ write: () => true })),
    config: { auth: { mode: "api_key" }, log: { access: true }, limits: { rate_limit_per_minute: 1_000_000_000 } },
  });
  try {
    const { key } = await t.bay.deps.apiKeys.create("bench", "bench");
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json", host: "localhost" };
    const body = JSON.stringify({ code: "1+1" });
    const created = await t.bay.app.fetch(new Request("http://localhost/v1/sandboxes", { method: "POST", headers, body: "{}" }));
    if (created.status !== 201) throw new Error(`in-process create: ${created.status} ${await created.text()}`);
    const id = ((await created.json()) as { id: string }).id;
    const exec = async () => {
      const r = await t.bay.app.fetch(
        // With its Content-Length, as a served request has it (without one, the body limit reads the body through a stream).
        new Request(`http://localhost/v1/sandboxes/${id}/python/exec`, {
          method: "POST",
          headers: { ...headers, "content-length": String(body.length) },
          body,
        }),
      );
      expectTwo((await r.json()) as object, "in-process exec");
    };
    return { t, id, exec };
  } catch (e) {
    await t.close();
    throw e;
  }
}

export async function execInProcess(runs: number): Promise<Row[]> {
  const { t, id, exec } = await inProcessBay();
  try {
    await exec(); // starts the session
    const ship = await shipOf({ stores: t.bay.deps.stores }, id);
    for (let i = 0; i < WARM_UP_CALLS; i++) await exec();
    for (let i = 0; i < 20; i++) await directExec(ship);
    const diffs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const [b, d] = await timedPair(exec, () => directExec(ship), i % 2 === 0);
      diffs.push(b - d);
    }
    return [
      {
        bench: "warm exec 1+1, Bay in process",
        measure: "Bay's own work per call (app.fetch vs direct), p50 / p99 of pairs",
        runs,
        bay: `${ms(median(diffs))} / ${ms(quantile(diffs, 0.99))}`,
        direct: "-",
        ratio: "-",
      },
    ];
  } finally {
    await t.close();
  }
}
