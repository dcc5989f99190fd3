/**
 * Every error body Bay sends must match the spec's ErrorBody: the variant for its
 * `code`, whose `details` is a closed object (additionalProperties: false). The
 * harness runs this on every >= 400 response of every test that goes through it, so
 * a new `details` field the spec does not declare fails the test that first sees it.
 */
import { zErrorBody } from "../../src/bay/api/generated/index.ts";

/** Throws naming the mismatch when `body` (of a response with `status`) is not the contract's ErrorBody. */
export function assertContractErrorBody(status: number, body: unknown): void {
  const parsed = zErrorBody.safeParse(body);
  if (parsed.success) return;
  const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  throw new Error(`error response ${status} does not match the spec's ErrorBody (${issues}): ${JSON.stringify(body).slice(0, 500)}`);
}

/** For a Response: checks JSON error bodies (status >= 400) without consuming the caller's copy. */
export async function assertContractErrorResponse(res: Response): Promise<void> {
  if (res.status < 400 || !/^application\/json\b/i.test(res.headers.get("content-type") ?? "")) return;
  // A server's answer in the sandbox, relayed with its own status and body: not Bay's error.
  if (res.headers.has("x-bay-upstream")) return;
  const text = await res.clone().text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`error response ${res.status} is not JSON: ${text.slice(0, 200)}`);
  }
  assertContractErrorBody(res.status, body);
}
