/**
 * GET /docs in a real browser (Debian's headless Chromium) against a real Bay
 * process: the page renders every operation of the spec from Bay's own assets (a
 * request to anywhere but loopback fails the test), and "Try it out" with an API key
 * under "Authorize" creates a sandbox that the API then shows to that key's owner.
 * The screenshot is kept under test-output/docs/ and its path printed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { operations } from "../../src/bay/api/generated/index.ts";
import { startBayProcess, type BayProcess } from "../support/bay-process.ts";
import { type Browser, launchChromium, outputPath } from "../support/chromium.ts";
import { uniqueInstanceId } from "../support/harness.ts";

const KEY = "docs-page-key-0123456789abcdef";
const OWNER = "docs-owner";
const AUTH = { authorization: `Bearer ${KEY}` };

let dir: string;
let bay: BayProcess;
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "bay-docs-"));
  bay = await startBayProcess({
    dbPath: join(dir, "bay.db"),
    instanceId: uniqueInstanceId(),
    dir,
    env: { BAY_AUTH_MODE: "api_key", BAY_API_KEY: KEY, BAY_API_KEY_OWNER: OWNER },
  });
  browser = await launchChromium();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
});

afterAll(async () => {
  await browser?.close();
  // Nothing here starts compute, but leave no sandbox behind either.
  if (bay) {
    const list = (await (await fetch(`${bay.url}/v1/sandboxes`, { headers: AUTH })).json()) as { items: Array<{ id: string }> };
    for (const sb of list.items) await fetch(`${bay.url}/v1/sandboxes/${sb.id}`, { method: "DELETE", headers: AUTH });
    await bay.kill("SIGTERM");
  }
  rmSync(dir, { recursive: true, force: true });
});

test("the page renders every operation of /openapi.json from Bay's own assets", async () => {
  const res = await page.goto(`${bay.url}/docs`);
  expect(res?.status()).toBe(200);
  expect(res?.headers()["content-security-policy"]).toContain("connect-src 'self'");
  await page.waitForSelector("#operations-Sandboxes-createSandbox", { timeout: 60_000 });
  const rendered = await page.$$eval(".opblock", (els) => els.map((e) => e.id).sort());
  const expected = Object.values(operations)
    .map((op) => `operations-${op.tags[0]!.replaceAll(" ", "_")}-${op.operationId}`)
    .sort();
  expect(rendered).toEqual(expected);
  expect(await page.textContent(".info .title")).toContain("Bay");
  expect(browser.offsite).toEqual([]);
  expect(problems).toEqual([]);
});

test("/docs/ (a trailing slash, as typed or linked) leads to the page, whose relative asset links still load", async () => {
  const other = await browser.context.newPage();
  try {
    const res = await other.goto(`${bay.url}/docs/`);
    expect(res?.status()).toBe(200);
    expect(new URL(other.url()).pathname).toBe("/docs");
    const redirect = await res?.request().redirectedFrom()?.response();
    expect(redirect?.status()).toBe(308);
    await other.waitForSelector("#operations-Sandboxes-createSandbox", { timeout: 60_000 });
    expect(browser.offsite).toEqual([]);
  } finally {
    await other.close();
  }
});

test('"Try it out" with an API key creates a sandbox for that key\'s owner', async () => {
  // Authorize: the Bearer scheme's value field, then Authorize and Close.
  await page.click("button.btn.authorize");
  await page.fill("#auth-bearer-value", KEY);
  await page.click(".modal-ux button.modal-btn.auth.authorize");
  await page.click(".modal-ux button.btn-done");

  const op = "#operations-Sandboxes-createSandbox";
  await page.click(`${op} .opblock-summary`);
  await page.click(`${op} .try-out__btn`);
  // The schema's example names a workspace that does not exist; ask for a TTL only.
  await page.fill(`${op} textarea.body-param__text`, '{"ttl": 600}');
  const [request, response] = await Promise.all([
    page.waitForRequest((r) => r.method() === "POST" && new URL(r.url()).pathname === "/v1/sandboxes"),
    page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/v1/sandboxes"),
    page.click(`${op} .execute`),
  ]);
  expect(request.headers().authorization).toBe(`Bearer ${KEY}`);
  expect(new URL(request.url()).origin).toBe(bay.url);
  expect(response.status()).toBe(201);
  const created = (await response.json()) as { id: string; status: string };
  expect(created.status).toBe("idle");

  // The page shows the live response.
  await page.waitForSelector(`${op} .live-responses-table tr.response .response-col_status`);
  expect((await page.textContent(`${op} .live-responses-table tr.response .response-col_status`))?.trim()).toBe("201");
  await page.locator(`${op} .live-responses-table`).scrollIntoViewIfNeeded();
  const shot = outputPath("docs", "try-it-create-sandbox.png");
  await page.screenshot({ path: shot });
  console.log(`[docs-page] screenshot: ${shot}`);

  // The API agrees: the sandbox belongs to the key's owner.
  const got = await fetch(`${bay.url}/v1/sandboxes/${created.id}`, { headers: AUTH });
  expect(got.status).toBe(200);
  expect(browser.offsite).toEqual([]);
  expect(problems).toEqual([]);
});
