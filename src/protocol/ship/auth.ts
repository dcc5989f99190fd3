/**
 * How Bay and a Ship authenticate each other with the session secret, both ways,
 * without the secret ever crossing the wire:
 *
 * * Bay → Ship: `Authorization: Bearer <bearer>`, a key derived from the secret.
 * * Ship → Bay: each call carries a fresh `X-Bay-Nonce`; Ship's answer carries
 *   `X-Ship-Proof`, an HMAC of that nonce under the secret. Bay takes no answer
 *   without a valid proof, so whatever else listens at a stale endpoint (after an
 *   engine restart, a host process or another container on the old port) can
 *   neither make Bay relay its answer nor learn anything that opens a Ship.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Request header: a fresh random value per call. */
export const NONCE_HEADER = "x-bay-nonce";
/** Response header: the proof that the answer comes from the session's Ship. */
export const PROOF_HEADER = "x-ship-proof";

const mac = (secret: string, label: string) => createHmac("sha256", secret).update(label).digest("base64url");

/** Bearers already derived, per secret: the same session's calls need the same one (bounded; cleared when full). */
const bearers = new Map<string, string>();
const MAX_BEARERS = 4096;

/** The bearer token Bay sends for a session (derived, so a listener that receives it cannot prove answers). */
export function shipBearer(secret: string): string {
  let bearer = bearers.get(secret);
  if (bearer === undefined) {
    if (bearers.size >= MAX_BEARERS) bearers.clear();
    bearer = mac(secret, "bay-ship/v1 bearer");
    bearers.set(secret, bearer);
  }
  return bearer;
}

/** Ship's proof for one call's nonce. */
export const shipProof = (secret: string, nonce: string): string => mac(secret, `bay-ship/v1 proof ${nonce}`);

/** The proof for a request's nonce header, or null when it carries none (or one past MAX_NONCE_LENGTH): nothing to prove. */
export const proofFor = (secret: string, nonce: string | null | undefined): string | null =>
  nonce && nonce.length <= MAX_NONCE_LENGTH ? shipProof(secret, nonce) : null;

/** A fresh nonce for one call. */
export const newNonce = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url");

/** Whether `proof` is the proof of `nonce` under `secret` (constant time). */
export function proofValid(secret: string, nonce: string, proof: string | null): boolean {
  if (!proof) return false;
  const expected = Buffer.from(shipProof(secret, nonce));
  const given = Buffer.from(proof);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Bounds on the nonce Ship accepts (it signs only what looks like one). */
export const MAX_NONCE_LENGTH = 64;
