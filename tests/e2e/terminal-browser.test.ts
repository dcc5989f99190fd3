/**
 * The terminal from a real browser: Debian's headless Chromium loads a small
 * page (xterm.js from npm, served by this test as the "app" a person uses)
 * whose backend mints a terminal ticket from Bay with the owner's credentials;
 * the page opens Bay's WebSocket with the ticket alone (a browser cannot set
 * headers on a WebSocket), and the test types on the real keyboard: a login
 * shell in /workspace, a resize seen by `stty size`, an interactive python3,
 * Ctrl-C, and the exit status in the close frame. The screenshot is kept under
 * test-output/terminal/ and its path printed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { type Browser, launchChromium, outputPath } from "../support/chromium.ts";
import type { TestBay } from "../support/harness.ts";
import { handshakeStatus } from "../support/terminal-client.ts";
import { newSandbox } from "./support/e2e.ts";
import { type ServedBay, serveBay } from "./support/serve.ts";
import { sharedE2eBay } from "./support/suite.ts";

const XTERM = join(import.meta.dir, "../../node_modules/@xterm/xterm");

let t: TestBay;
let bay: ServedBay;
let app: ReturnType<typeof Bun.serve>;
let browser: Browser;
let page: Page;
let sandboxId: string;
/** Ticket URLs the app handed out (to try one again from outside the browser). */
const minted: string[] = [];
const problems: string[] = [];

sharedE2eBay((b) => {
  t = b;
});

/** The page: xterm.js wired to Bay's terminal WebSocket (binary frames for bytes, text frames for control). */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Bay terminal</title>
<link rel="stylesheet" href="/xterm.css">
<style>body{margin:0;background:#1e1e1e;color:#ccc;font:14px sans-serif}#bar{padding:6px 10px}#term{padding:6px}</style>
</head><body>
<div id="bar">sandbox <b id="sb"></b> — <span id="state">connecting</span></div>
<div id="term"></div>
<script type="module">
import { Terminal } from "/xterm.mjs";
const term = new Terminal({ cols: 100, rows: 30, fontFamily: "DejaVu Sans Mono, monospace", fontSize: 14, theme: { background: "#1e1e1e" } });
term.open(document.getElementById("term"));
const state = { open: false, controls: [], closed: null };
window.bay = { term, state };
window.screenText = () => {
  const b = term.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join("\\n");
};
// The app's backend mints a ticket with its credentials; the page only ever sees the ticket.
const { url, sandbox } = await (await fetch("/terminal-session")).json();
document.getElementById("sb").textContent = sandbox;
// The shell starts at the terminal's size; later sizes go as resize messages.
const ws = new WebSocket(url + "&cols=" + term.cols + "&rows=" + term.rows);
ws.binaryType = "arraybuffer";
const enc = new TextEncoder();
ws.onopen = () => {
  state.open = true;
  document.getElementById("state").textContent = "connected";
  term.focus();
};
ws.onmessage = (e) => {
  if (typeof e.data === "string") state.controls.push(JSON.parse(e.data));
  else term.write(new Uint8Array(e.data));
};
ws.onclose = (e) => {
  state.closed = { code: e.code, reason: e.reason };
  document.getElementById("state").textContent = "closed " + e.code + " " + e.reason;
};
term.onData((d) => ws.readyState === 1 && ws.send(enc.encode(d)));
term.onResize(({ cols, rows }) => ws.readyState === 1 && ws.send(JSON.stringify({ type: "resize", cols, rows })));
</script>
</body></html>`;

beforeAll(async () => {
  bay = serveBay(t);
  sandboxId = await newSandbox(t);
  app = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/") return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
      if (path === "/xterm.mjs")
        return new Response(Bun.file(join(XTERM, "lib/xterm.mjs")), { headers: { "content-type": "text/javascript" } });
      if (path === "/xterm.css") return new Response(Bun.file(join(XTERM, "css/xterm.css")), { headers: { "content-type": "text/css" } });
      if (path === "/terminal-session") {
        const r = await t.json("POST", `/v1/sandboxes/${sandboxId}/terminal/tickets`);
        if (r.status !== 201) return new Response(JSON.stringify(r.body), { status: 502 });
        const url = `${bay.ws}${r.body.url}`;
        minted.push(url);
        return Response.json({ url, sandbox: sandboxId });
      }
      return new Response("not found", { status: 404 });
    },
  });
  browser = await launchChromium();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  app?.stop(true);
  if (sandboxId) await t.call("DELETE", `/v1/sandboxes/${sandboxId}`).catch(() => {});
  await bay?.stop();
});

/** Waits until the terminal's screen (xterm's buffer, as the person sees it) matches. */
async function screen(re: RegExp, ms = 60_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await page.evaluate(() => (window as any).screenText() as string);
    const m = text.match(re);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`the screen never matched ${re}; it shows:\n${text.trimEnd()}`);
    await Bun.sleep(50);
  }
}

test("a person in Chromium types into xterm.js: shell, resize, python3, Ctrl-C, exit status; the ticket worked once", async () => {
  await page.goto(`http://127.0.0.1:${app.port}/`);
  await page.waitForFunction(() => (window as any).bay?.state.open === true, undefined, { timeout: 60_000 });
  // The focused terminal takes the keyboard, as when a person clicks into it.
  await page.click("#term");

  await page.keyboard.type('echo "[$TERM|$PWD|$(id -un)|$(stty size)]"');
  await page.keyboard.press("Enter");
  const m = await screen(/^\[(\S+)\|(\S+)\|(\S+)\|(\d+ \d+)\]$/m);
  expect(m.slice(1)).toEqual(["xterm-256color", "/workspace", "ship", "30 100"]);

  // xterm.js resizes; the page sends the resize message; the shell sees the new size.
  await page.evaluate(() => (window as any).bay.term.resize(120, 40));
  await page.keyboard.type("stty size");
  await page.keyboard.press("Enter");
  await screen(/^40 120$/m);

  await page.keyboard.type("python3 -q");
  await page.keyboard.press("Enter");
  await screen(/^>>> $/m);
  await page.keyboard.type("print(6 * 7, 'from python')");
  await page.keyboard.press("Enter");
  await screen(/^42 from python$/m);
  await page.keyboard.type("import time; print('napping', flush=True); time.sleep(600)");
  await page.keyboard.press("Enter");
  await screen(/^napping$/m);
  await page.keyboard.press("Control+C");
  await screen(/^KeyboardInterrupt$/m);
  await page.keyboard.type("exit()");
  await page.keyboard.press("Enter");
  // Back at the shell's prompt (~ is /workspace, the sandbox user's home).
  await screen(/^>>> exit\(\)\n\S+@\S+:~\$ $/m);
  await page.keyboard.type("printf '\\033[1;32mhello from a Bay sandbox\\033[0m\\n'; ls -la /workspace | head -5");
  await page.keyboard.press("Enter");
  await screen(/^hello from a Bay sandbox$/m);

  const shot = outputPath("terminal", "xterm-chromium.png");
  await page.screenshot({ path: shot });
  expect(statSync(shot).size).toBeGreaterThan(5_000);
  console.log(`screenshot: ${shot}`);

  await page.keyboard.type("exit 7");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => (window as any).bay.state.closed !== null, undefined, { timeout: 30_000 });
  const state = await page.evaluate(() => (window as any).bay.state);
  expect(state.closed).toEqual({ code: 1000, reason: JSON.stringify({ exit_code: 7, signal: null }) });
  expect(state.controls).toContainEqual({ type: "exit", exit_code: 7, signal: null });
  expect(state.controls.filter((c: { type: string }) => c.type === "error")).toEqual([]);

  // The page's ticket was spent by its one WebSocket: replayed from elsewhere, it opens nothing.
  expect(minted.length).toBe(1);
  expect(await handshakeStatus(minted[0]!)).toBe(401);
  expect(browser.offsite).toEqual([]);
  expect(problems).toEqual([]);
});
