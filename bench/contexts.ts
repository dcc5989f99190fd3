/**
 * Code contexts and streamed execs, side by side (no assertions on time):
 * - a context created (201) and its first `1+1` answered, per language, via Bay vs
 *   straight to the sandbox's Ship (called with the session's own secret);
 * - a warm `1+1` in a JavaScript context vs in the Python kernel, both via Bay;
 * - a streamed exec: time to the first byte and to the first output event, via Bay vs a
 *   direct Ship stream;
 * - streamed vs JSON, both via Bay: the first output event of a stream vs the whole JSON
 *   answer of the same code (which waits for the end), and the stream's result event vs
 *   the JSON answer (what streaming costs);
 * - the resident memory of an idle context per language (its kernel process: RSS and PSS).
 */
import { shipDirect } from "../tests/e2e/support/e2e.ts";
import { createSandbox, deleteSandbox, type BenchContext } from "./context.ts";
import { median, ms, ratio, time, type Row } from "./stats.ts";

/** Where to send requests, and the headers they need. */
interface Target {
  base: string;
  headers: Record<string, string>;
}

type Language = "python" | "javascript" | "typescript";

function viaBay(ctx: BenchContext, sandboxId: string): Target {
  return { base: `${ctx.bay.url}/v1/sandboxes/${sandboxId}`, headers: ctx.auth };
}

async function post(target: Target, path: string, body: unknown, extra: Record<string, string> = {}): Promise<Response> {
  return fetch(`${target.base}${path}`, {
    method: "POST",
    headers: { ...target.headers, "content-type": "application/json", ...extra },
    body: JSON.stringify(body),
  });
}

async function json<T = any>(res: Response, what: string): Promise<T> {
  const body = (await res.json()) as T;
  if (!res.ok) throw new Error(`${what}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

async function newContext(target: Target, language: Language): Promise<string> {
  return (await json<{ id: string }>(await post(target, "/contexts", { language }), `create ${language} context`)).id;
}

async function dropContext(target: Target, id: string): Promise<void> {
  const res = await fetch(`${target.base}/contexts/${id}`, { method: "DELETE", headers: target.headers });
  if (res.status !== 204) throw new Error(`delete context ${id}: ${res.status} ${await res.text()}`);
}

/** Creates a context, runs its first `1+1`, deletes it; the time to the 201 and to the first result. */
async function contextToFirstResult(target: Target, language: Language): Promise<{ created: number; first: number }> {
  const t0 = performance.now();
  const id = await newContext(target, language);
  const created = performance.now() - t0;
  const r = await json<{ output: string }>(await post(target, "/code/exec", { context_id: id, code: "1+1" }), "first exec");
  const first = performance.now() - t0;
  if (r.output !== "2\n") throw new Error(`unexpected ${JSON.stringify(r)}`);
  await dropContext(target, id);
  return { created, first };
}

/** A streamed exec: ms to the first byte of the body, to the first stdout event, and to the result event. */
async function streamTimes(
  target: Target,
  route: string,
  code: string,
): Promise<{ firstByte: number; firstOutput: number; result: number }> {
  const t0 = performance.now();
  const res = await post(target, route, { code }, { accept: "text/event-stream" });
  if (!res.ok || !res.body) throw new Error(`stream: ${res.status} ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let firstByte = 0;
  let firstOutput = 0;
  let result = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!firstByte) firstByte = performance.now() - t0;
    text += decoder.decode(value, { stream: true });
    if (!firstOutput && text.includes("event: stdout")) firstOutput = performance.now() - t0;
    if (!result && text.includes("event: result")) result = performance.now() - t0;
  }
  if (!firstOutput || !result) throw new Error(`stream without output or result: ${text.slice(0, 300)}`);
  return { firstByte, firstOutput, result };
}

/** Runs `a` and `b` `runs` times each, alternating which goes first. */
async function sideBySide<A, B>(runs: number, a: () => Promise<A>, b: () => Promise<B>): Promise<[A[], B[]]> {
  const as: A[] = [];
  const bs: B[] = [];
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      as.push(await a());
      bs.push(await b());
    } else {
      bs.push(await b());
      as.push(await a());
    }
  }
  return [as, bs];
}

const row = (bench: string, measure: string, runs: number, a: number[], b: number[]): Row => ({
  bench,
  measure,
  runs,
  bay: ms(median(a)),
  direct: ms(median(b)),
  ratio: ratio(median(a), median(b)),
});

/** Resident and proportional set size (MiB) of a process in the sandbox, read as the sandbox user. */
async function memoryOf(bay: Target, pid: string): Promise<{ rss: number; pss: number }> {
  const r = await json<{ output: string }>(
    await post(bay, "/shell/exec", { command: `grep -E '^(Rss|Pss):' /proc/${pid}/smaps_rollup` }),
    "smaps_rollup",
  );
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(r.output)?.[1] ?? Number.NaN);
  const rss = kib("Rss");
  const pss = kib("Pss");
  if (!Number.isFinite(rss) || !Number.isFinite(pss)) throw new Error(`no memory figures for pid ${pid}: ${r.output}`);
  return { rss: rss / 1024, pss: pss / 1024 };
}

const PID_CODE: Record<Language, string> = {
  python: "import os\nos.getpid()",
  javascript: "process.pid",
  typescript: "const pid: number = process.pid\npid",
};

/**
 * Idle memory of `perLanguage` contexts of each language, all alive at once in one
 * sandbox (so PSS shares what they map in common), after one cell each and a second of
 * quiet. Medians per language.
 */
async function idleMemory(bay: Target, perLanguage: number): Promise<Record<Language, { rss: number; pss: number }>> {
  const languages: Language[] = ["javascript", "typescript", "python"];
  const made: Array<{ id: string; language: Language; pid: string }> = [];
  try {
    for (const language of languages) {
      for (let i = 0; i < perLanguage; i++) {
        const id = await newContext(bay, language);
        const r = await json<{ output: string }>(await post(bay, "/code/exec", { context_id: id, code: PID_CODE[language] }), "pid");
        made.push({ id, language, pid: r.output.trim() });
      }
    }
    await Bun.sleep(1000);
    const out = {} as Record<Language, { rss: number; pss: number }>;
    for (const language of languages) {
      const figures = await Promise.all(made.filter((m) => m.language === language).map((m) => memoryOf(bay, m.pid)));
      out[language] = { rss: median(figures.map((f) => f.rss)), pss: median(figures.map((f) => f.pss)) };
    }
    return out;
  } finally {
    for (const m of made) await dropContext(bay, m.id).catch(() => {});
  }
}

export interface ContextsBench {
  /** Via Bay vs straight to Ship. */
  viaBay: Row[];
  /** JavaScript vs Python, both via Bay. */
  languages: Row[];
  /** Streamed vs JSON, both via Bay. */
  streaming: Row[];
  /** Idle memory, one line per language. */
  memory: string[];
}

export async function contextsBench(ctx: BenchContext, execRuns: number): Promise<ContextsBench> {
  const { id } = await createSandbox(ctx);
  try {
    const bay = viaBay(ctx, id);
    await json(await post(bay, "/python/exec", { code: "1+1" }), "warm-up"); // starts the session
    const direct = await shipDirect(ctx.bay, id);
    const ship: Target = { base: direct.endpoint, headers: direct.headers };

    const created: Partial<Record<Language, [Array<{ created: number; first: number }>, Array<{ created: number; first: number }>]>> = {};
    for (const language of ["javascript", "python"] as const) {
      await contextToFirstResult(bay, language);
      await contextToFirstResult(ship, language);
      created[language] = await sideBySide(
        ctx.runs,
        () => contextToFirstResult(bay, language),
        () => contextToFirstResult(ship, language),
      );
    }

    const PRINT = "print('x')";
    for (let i = 0; i < 5; i++) {
      await streamTimes(bay, "/python/exec", PRINT);
      await streamTimes(ship, "/ipython/exec", PRINT);
    }
    const [streamBay, streamShip] = await sideBySide(
      execRuns,
      () => streamTimes(bay, "/python/exec", PRINT),
      () => streamTimes(ship, "/ipython/exec", PRINT),
    );

    // Streamed vs JSON via Bay: code that prints at once, then works for a while.
    const jsonAnswer = (code: string) => () =>
      time(async () => {
        const r = await json<{ success: boolean }>(await post(bay, "/python/exec", { code }), "json exec");
        if (!r.success) throw new Error(`json exec failed: ${JSON.stringify(r)}`);
      });
    const SLOW = "import time\nprint('x', flush=True)\ntime.sleep(0.5)";
    const slowRuns = Math.max(10, Math.floor(execRuns / 10));
    const [slowStream, slowJson] = await sideBySide(slowRuns, () => streamTimes(bay, "/python/exec", SLOW), jsonAnswer(SLOW));
    const [fastStream, fastJson] = await sideBySide(execRuns, () => streamTimes(bay, "/python/exec", PRINT), jsonAnswer(PRINT));

    const js = () => post(bay, "/code/exec", { language: "javascript", code: "1+1" }).then((r) => json(r, "js 1+1"));
    const py = () => post(bay, "/python/exec", { code: "1+1" }).then((r) => json(r, "python 1+1"));
    for (let i = 0; i < 10; i++) {
      await js();
      await py();
    }
    const [jsTimes, pyTimes] = await sideBySide(
      execRuns,
      () => time(js),
      () => time(py),
    );

    // Two per language: six stay under the default profile's max_contexts (8).
    const memory = await idleMemory(bay, 2);
    const [jsBay, jsShip] = created.javascript!;
    const [pyBay, pyShip] = created.python!;
    return {
      viaBay: [
        row(
          "JS context create (201)",
          "median",
          ctx.runs,
          jsBay.map((c) => c.created),
          jsShip.map((c) => c.created),
        ),
        row(
          "JS context create → first 1+1",
          "median",
          ctx.runs,
          jsBay.map((c) => c.first),
          jsShip.map((c) => c.first),
        ),
        row(
          "Python context create (201)",
          "median",
          ctx.runs,
          pyBay.map((c) => c.created),
          pyShip.map((c) => c.created),
        ),
        row(
          "Python context create → first 1+1",
          "median",
          ctx.runs,
          pyBay.map((c) => c.first),
          pyShip.map((c) => c.first),
        ),
        row(
          "streamed print('x')",
          "first byte, median",
          execRuns,
          streamBay.map((s) => s.firstByte),
          streamShip.map((s) => s.firstByte),
        ),
        row(
          "streamed print('x')",
          "first stdout event, median",
          execRuns,
          streamBay.map((s) => s.firstOutput),
          streamShip.map((s) => s.firstOutput),
        ),
      ],
      languages: [
        row(
          "JS vs Python context create (201), via Bay",
          "median",
          ctx.runs,
          jsBay.map((c) => c.created),
          pyBay.map((c) => c.created),
        ),
        row(
          "JS vs Python create → first 1+1, via Bay",
          "median",
          ctx.runs,
          jsBay.map((c) => c.first),
          pyBay.map((c) => c.first),
        ),
        row("warm 1+1 via Bay", "median", execRuns, jsTimes, pyTimes),
      ],
      streaming: [
        row(
          "print, then 0.5 s of work",
          "first stdout event / JSON answer",
          slowRuns,
          slowStream.map((s) => s.firstOutput),
          slowJson,
        ),
        row(
          "print('x')",
          "first stdout event / JSON answer",
          execRuns,
          fastStream.map((s) => s.firstOutput),
          fastJson,
        ),
        row(
          "print('x')",
          "result event / JSON answer",
          execRuns,
          fastStream.map((s) => s.result),
          fastJson,
        ),
      ],
      memory: (["javascript", "typescript", "python"] as const).map(
        (l) =>
          `idle ${l} context (kernel process, median of 2, six alive together): RSS ${memory[l].rss.toFixed(1)} MiB, PSS ${memory[l].pss.toFixed(1)} MiB`,
      ),
    };
  } finally {
    await deleteSandbox(ctx, id);
  }
}
