/**
 * Owner namespaces: every owner id says what kind of identity named it, so two
 * kinds never meet by accident. An API key's owner is the name it was created
 * for; a JWT's is `jwt:` + its subject (configurable: `auth.jwt.owner_prefix`);
 * an anonymous one (development mode) is `anon:` + X-Owner or the default owner.
 */

/** Prefixes Bay gives JWT and anonymous owners; an API key's owner may not start with one. */
export const RESERVED_OWNER_PREFIXES = ["jwt:", "anon:"] as const;

/** Owners named in anonymous mode. */
export const ANONYMOUS_PREFIX = "anon:";

/** Characters an owner name may have. */
export const OWNER_NAME = /^[A-Za-z0-9_.@:-]{1,128}$/;

/**
 * The prefixes an API key's owner may not start with: Bay's own, plus a custom
 * `auth.jwt.owner_prefix` (else a key for "corp-alice" would own what the JWT subject
 * "alice" owns under the prefix "corp-"). The empty prefix shares the namespace on purpose.
 */
export function reservedOwnerPrefixes(jwtOwnerPrefix = "jwt:"): readonly string[] {
  const own: readonly string[] = RESERVED_OWNER_PREFIXES;
  return jwtOwnerPrefix === "" || own.includes(jwtOwnerPrefix) ? own : [...own, jwtOwnerPrefix];
}

/** True when `owner` may own API keys (`reserved`: see reservedOwnerPrefixes). */
export const isApiKeyOwner = (owner: string, reserved: readonly string[] = RESERVED_OWNER_PREFIXES): boolean =>
  OWNER_NAME.test(owner) && !reserved.some((p) => owner.startsWith(p));
