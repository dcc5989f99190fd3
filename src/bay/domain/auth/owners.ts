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

/** True when `owner` may own API keys. */
export const isApiKeyOwner = (owner: string): boolean =>
  OWNER_NAME.test(owner) && !RESERVED_OWNER_PREFIXES.some((p) => owner.startsWith(p));
