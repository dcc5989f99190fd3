/**
 * The ways a data-plane call's credentials go wrong (or right another way) that E2B's
 * HTTP data plane (e2b.ts) and envd's Connect calls (envd-rpc.ts) share: the sandbox
 * id header and the envd access token, each missing, forged, another sandbox's or a
 * killed one's, and user root. Each caller adds its own (junk ids, the traffic token,
 * signed URLs).
 */
import type { Rng } from "../lib/rng.ts";

/** What a credential case changes of a draft. */
export interface CredentialDraft {
  headers: Array<[string, string]>;
  reject: string[];
}

export const SHARED_ACCESS = ["noToken", "forged", "otherToken", "otherId", "gone", "tokenOnly", "root"] as const;
export type SharedAccess = (typeof SHARED_ACCESS)[number];

export const isSharedAccess = (kind: string): kind is SharedAccess => (SHARED_ACCESS as readonly string[]).includes(kind);

/** Sets `name` to `value`, or removes it (undefined), whatever its case. */
export function setHeader(d: { headers: Array<[string, string]> }, name: string, value: string | undefined): void {
  d.headers = d.headers.filter(([k]) => k.toLowerCase() !== name.toLowerCase());
  if (value !== undefined) d.headers.push([name, value]);
}

type Creds = [id: string | undefined, token: string | undefined, why?: string];

/** The sandbox id header and access token of each case (undefined: none), and why it must be refused. */
const CASES: Record<Exclude<SharedAccess, "root">, (rng: Rng) => Creds> = {
  noToken: () => ["{{esb.own}}", undefined, "no access token"],
  forged: (rng) => ["{{esb.own}}", rng.pick(["{{etok.forged}}", "ea_x", "x".repeat(300), "{{etta.own}}"]), "a forged access token"],
  otherToken: () => ["{{esb.own}}", "{{etok.other}}", "another sandbox's access token"],
  otherId: (rng) => [
    rng.pick(["{{esb.other}}", "{{esb.doomed}}", "{{sb.own}}", "x".repeat(129)]),
    "{{etok.own}}",
    "the token of another sandbox than the one named",
  ],
  gone: (rng) => [rng.pick(["{{esb.gone}}", undefined]), "{{etok.gone}}", "a killed sandbox"],
  // What SDKs before the header send: the token names its sandbox.
  tokenOnly: () => [undefined, "{{etok.own}}"],
};

/** Gives `d` the credentials of `kind`, and the reason it must be refused when it must. */
export function sharedAccess(rng: Rng, d: CredentialDraft, kind: SharedAccess): void {
  if (kind === "root") {
    setHeader(d, "Authorization", rng.pick(["Basic cm9vdDo=", "Basic cm9vdDpwdw=="]));
    d.reject.push("user root");
    return;
  }
  const [id, token, why] = CASES[kind](rng);
  setHeader(d, "E2b-Sandbox-Id", id);
  setHeader(d, "X-Access-Token", token);
  if (why) d.reject.push(why);
}
