/** The E2B adapter's pure parts: paths, tokens and file-URL signatures, argv round trips, NDJSON lines, filters, users. */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { parseMetadataFilter } from "../../src/bay/e2b/control-routes.ts";
import { E2bCredentials, signFileUrl } from "../../src/bay/e2b/credentials.ts";
import { requestedUser } from "../../src/bay/e2b/envd/access.ts";
import { parseArgv, quoteArgv } from "../../src/bay/e2b/envd/process-backend.ts";
import { keepaliveInterval } from "../../src/bay/e2b/envd/keepalive.ts";
import { errorLine, executionLines, resultLine } from "../../src/bay/e2b/interpreter-lines.ts";
import { language } from "../../src/bay/e2b/interpreter-routes.ts";
import { ndjsonFromEvents } from "../../src/bay/e2b/interpreter-stream.ts";
import { toE2bPath, toWorkspacePath } from "../../src/bay/e2b/paths.ts";
import { BayError } from "../../src/bay/errors.ts";

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof BayError ? e.code : String(e);
  }
  return "ok";
};

describe("E2B paths", () => {
  test.each([
    ["/home/user", "."],
    ["/home/user/", "."],
    ["/home/user/a/b.txt", "a/b.txt"],
    ["/workspace/a", "a"],
    ["a/./b//c", "a/b/c"],
    ["~/x", "x"],
    ["", "."],
    ["/home/user/a/../b", "b"],
  ])("%p is workspace path %p", (raw, rel) => expect(toWorkspacePath(raw)).toBe(rel));

  test.each([["/tmp/x"], ["/etc/passwd"], ["/home/user/../../etc"], ["/home/userx/a"], ["a\u0000b"], ["/home/user/%2e%2e/x"], [".."]])(
    "%p is refused as invalid_path",
    (raw) => expect(code(() => toWorkspacePath(raw))).toBe("invalid_path"),
  );

  test("workspace paths read back as absolute E2B paths", () => {
    expect(toE2bPath(".")).toBe("/home/user");
    expect(toE2bPath("a/b")).toBe("/home/user/a/b");
  });
});

describe("E2B credentials", () => {
  const creds = new E2bCredentials(async () => "k".repeat(64));
  const other = new E2bCredentials(async () => "j".repeat(64));

  test("a token names its sandbox, checks for it only, and depends on the installation's secret", async () => {
    const t = await creds.token("envd", "sandbox-01abc");
    expect(t).toMatch(/^ea_sandbox-01abc_[A-Za-z0-9_-]{43}$/);
    expect(E2bCredentials.sandboxOf(t)).toBe("sandbox-01abc");
    expect(await creds.check("envd", "sandbox-01abc", t)).toBe(true);
    expect(await creds.check("envd", "sandbox-01abd", t)).toBe(false);
    expect(await creds.check("traffic", "sandbox-01abc", t)).toBe(false);
    expect(await other.check("envd", "sandbox-01abc", t)).toBe(false);
    expect(await creds.check("envd", "sandbox-01abc", undefined)).toBe(false);
    expect(await creds.check("envd", "sandbox-01abc", `${t}x`)).toBe(false);
    expect(E2bCredentials.sandboxOf("ea_../../x_abc")).toBeUndefined();
  });

  test("file URL signatures are the SDKs' (sha256 of path:op:user:token[:exp], base64 unpadded, v1_)", async () => {
    const token = await creds.token("envd", "sandbox-01abc");
    const raw = `/home/user/a.txt:read::${token}:1700000000`;
    const expected = `v1_${createHash("sha256").update(raw).digest("base64").replace(/=+$/, "")}`;
    const s = { path: "/home/user/a.txt", operation: "read" as const, user: "", expiration: 1700000000 };
    expect(signFileUrl(s, token)).toBe(expected);
    expect(await creds.checkSignature("sandbox-01abc", { ...s, signature: expected }, 1_600_000_000_000)).toBe(true);
    // Expired, another operation, another path: refused.
    expect(await creds.checkSignature("sandbox-01abc", { ...s, signature: expected }, 1_800_000_000_000)).toBe(false);
    expect(await creds.checkSignature("sandbox-01abc", { ...s, operation: "write", signature: expected }, 1_600_000_000_000)).toBe(false);
    expect(await creds.checkSignature("sandbox-01abc", { ...s, path: "/home/user/b", signature: expected }, 1_600_000_000_000)).toBe(false);
  });

  test("a signed URL naming no sandbox: the signer is found among many; forged shapes and expired ones read no candidates", async () => {
    const ids = Array.from({ length: 500 }, (_, i) => `sandbox-${i.toString(36)}`);
    let reads = 0;
    const candidates = async () => {
      reads++;
      return ids;
    };
    const s = { path: "/home/user/a.txt", operation: "write" as const, user: "user", expiration: null };
    const signature = signFileUrl(s, await creds.token("envd", "sandbox-dd"));
    expect(await creds.signerOf(candidates, { ...s, signature }, 0)).toBe("sandbox-dd");
    expect(await creds.signerOf(candidates, { ...s, path: "/home/user/b.txt", signature }, 0)).toBeNull();
    expect(reads).toBe(2);
    // Anyone can send these: refused before the live sandboxes are read or any hash is made.
    for (const forged of ["", "v1_", "v1_AAAA", `v1_${"A".repeat(44)}`, `v2_${"A".repeat(43)}`, `${signature}=`, "x".repeat(128)]) {
      expect(await creds.signerOf(candidates, { ...s, signature: forged }, 0)).toBeNull();
    }
    const expiring = { ...s, expiration: 1_700_000_000 };
    const late = signFileUrl(expiring, await creds.token("envd", "sandbox-dd"));
    expect(await creds.signerOf(candidates, { ...expiring, signature: late }, 1_700_000_000_000)).toBe("sandbox-dd");
    expect(await creds.signerOf(candidates, { ...expiring, signature: late }, 1_700_000_001_000)).toBeNull();
    expect(reads).toBe(3);
  });
});

describe("envd keepalives", () => {
  test("a client's Keepalive-Ping-Interval is honoured within [1 s, the cap]: a tiny one cannot make Bay spin out frames", () => {
    expect(keepaliveInterval("50", 15_000)).toBe(15_000);
    expect(keepaliveInterval("2", 15_000)).toBe(2_000);
    for (const tiny of ["0.000001", "0.001", "1e-300", "0.5"]) expect(keepaliveInterval(tiny, 15_000)).toBe(1_000);
    for (const junk of [null, "", "0", "-5", "abc", "Infinity", "NaN"]) expect(keepaliveInterval(junk, 15_000)).toBe(15_000);
    // A test's own shorter cap still applies.
    expect(keepaliveInterval("0.001", 200)).toBe(200);
  });
});

describe("argv round trip", () => {
  test.each([[["/bin/bash", "-l", "-c", "echo 'hi' \"there\"; ls"]], [["a b", "", "it's", "$(rm -rf /)"]], [["x"]]])("%p", (argv) =>
    expect(parseArgv(quoteArgv(argv))).toEqual(argv),
  );
  test("a command Bay did not quote is one bash -c command", () => {
    expect(parseArgv("echo hi")).toEqual(["/bin/bash", "-c", "echo hi"]);
  });
});

describe("code interpreter lines", () => {
  test("stdout without the result's own text, results with E2B's field names, the count and the end", () => {
    const lines = executionLines({
      success: true,
      output: "hello\n42\n",
      error: null,
      data: [
        { type: "display_data", data: { "image/png": "iVBOR", "text/plain": "<Figure>" } },
        { type: "execute_result", data: { "text/plain": "42", "application/x-custom": "z" } },
      ],
      execution_count: 3,
    });
    expect(lines).toEqual([
      { type: "stdout", text: "hello\n", timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) },
      { type: "result", is_main_result: false, png: "iVBOR", text: "<Figure>" },
      { type: "result", is_main_result: true, text: "42", extra: { "application/x-custom": "z" } },
      { type: "number_of_executions", execution_count: 3 },
      { type: "end_of_execution" },
    ]);
  });

  test("an error's name and value come from the traceback's last line", () => {
    const tb = 'Traceback (most recent call last):\n  File "<stdin>", line 1\nZeroDivisionError: division by zero\n';
    expect(errorLine(tb)).toEqual({ type: "error", name: "ZeroDivisionError", value: "division by zero", traceback: tb });
    expect(errorLine("KeyboardInterrupt")).toMatchObject({ name: "KeyboardInterrupt", value: "" });
    expect(resultLine({}, true)).toEqual({ type: "result", is_main_result: true });
  });

  test("output lines carry E2B's timestamp (the Python SDK reads it before its callbacks); a string result loses one pair of single quotes, as on E2B", () => {
    const before = Date.now();
    const line = executionLines({ success: true, output: "x\n", error: null, data: [], execution_count: 1 })[0]!;
    expect(line).toMatchObject({ type: "stdout", text: "x\n" });
    expect(Date.parse(line.timestamp as string)).toBeGreaterThanOrEqual(before - 1);
    expect(Date.parse(line.timestamp as string)).toBeLessThanOrEqual(Date.now());
    const text = (plain: string) => resultLine({ "text/plain": plain }, true).text;
    expect(text("'abc'")).toBe("abc");
    expect(text('"it\'s"')).toBe('"it\'s"');
    expect(text("'a' + 'b'")).toBe("a' + 'b");
    expect(text("42")).toBe("42");
    expect(text("'")).toBe("");
  });
});

describe("list filters and users", () => {
  test("metadata filters decode as the SDKs encode them", () => {
    const pairs = new URLSearchParams({ [encodeURIComponent("a b")]: encodeURIComponent("c&d"), k: "v" }).toString();
    expect(parseMetadataFilter(pairs)).toEqual({ "a b": "c&d", k: "v" });
    expect(code(() => parseMetadataFilter("a=%E0%A4%A"))).toBe("validation_error");
  });

  test("Basic auth names the sandbox user; root is refused, not run unprivileged", () => {
    expect(requestedUser(undefined)).toBe("user");
    expect(requestedUser(`Basic ${btoa("user:")}`)).toBe("user");
    expect(code(() => requestedUser(`Basic ${btoa("root:")}`))).toBe("forbidden");
    expect(code(() => requestedUser(`Basic ${btoa("alice:")}`))).toBe("validation_error");
    expect(code(() => requestedUser("Bearer bay_abc"))).toBe("validation_error");
  });
});

describe("streamed exec as NDJSON", () => {
  const sse = (events: Array<[string, unknown]>) =>
    new Blob(events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).concat([": ping\n\n"])).stream();
  const collect = async (it: AsyncIterable<Record<string, unknown>>) => {
    const out: Array<Record<string, unknown>> = [];
    for await (const l of it) out.push(l);
    return out;
  };

  test("output and displays as they come, then the main result, the count and the end; displays are not repeated", async () => {
    const lines = await collect(
      ndjsonFromEvents(
        sse([
          ["stdout", { text: "a\n" }],
          ["display", { data: { "image/png": "iVBOR" } }],
          ["stderr", { text: "w\n" }],
          [
            "result",
            {
              success: true,
              output: "a\nw\n",
              error: null,
              data: [
                { type: "display_data", data: { "image/png": "iVBOR" } },
                { type: "execute_result", data: { "text/plain": "2" } },
              ],
              execution_count: 5,
            },
          ],
        ]),
      ),
    );
    expect(lines).toEqual([
      { type: "stdout", text: "a\n", timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) },
      { type: "result", is_main_result: false, png: "iVBOR" },
      { type: "stderr", text: "w\n", timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) },
      { type: "result", is_main_result: true, text: "2" },
      { type: "number_of_executions", execution_count: 5 },
      { type: "end_of_execution" },
    ]);
  });

  test("a JavaScript error is named from the first line of its stack; an error event or a cut stream still ends", async () => {
    const js = await collect(
      ndjsonFromEvents(
        sse([["result", { success: false, output: "", error: "TypeError: x is not a function\n    at <anonymous>:1:1", data: [] }]]),
      ),
    );
    expect(js[0]).toMatchObject({ type: "error", name: "TypeError", value: "x is not a function" });
    const timeout = await collect(ndjsonFromEvents(sse([["error", { error: { code: "timeout", message: "timed out" } }]])));
    expect(timeout).toEqual([
      { type: "error", name: "TimeoutError", value: "timed out", traceback: "timed out" },
      { type: "end_of_execution" },
    ]);
    const cut = await collect(ndjsonFromEvents(sse([["stdout", { text: "x" }]])));
    expect(cut.at(-1)).toEqual({ type: "end_of_execution" });
    expect(cut.at(-2)).toMatchObject({ type: "error", name: "ExecutionError" });
  });

  test("languages and their aliases; others refused", () => {
    expect(language(undefined)).toBe("python");
    expect(language("JS")).toBe("javascript");
    expect(language("ts")).toBe("typescript");
    expect(code(() => language("r"))).toBe("validation_error");
  });
});
