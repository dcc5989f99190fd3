/**
 * E2B's alias lookup (spec path `/templates/aliases/{alias}`) is routed, under the
 * E2B prefix, as TEMPLATE_ALIAS_PATH and answers only when its first segment is
 * ALIASES_SEGMENT (see control-routes.ts). The rule lives here, apart from the
 * E2B API, so that the request metrics can name the route without loading it.
 */
export const TEMPLATE_ALIAS_PATH = "/templates/:templateID/:alias";
export const ALIASES_SEGMENT = "aliases";

/**
 * The metrics label of a request that matched `template` (TEMPLATE_ALIAS_PATH
 * under a prefix): the spec path under `aliases`, `unmatched` anywhere else. Read
 * from the path, since a guard may have answered before the route's parameters were read.
 */
export function templateAliasLabel(template: string, path: string, unmatched: string): string {
  const segments = path.split("/");
  let first = segments[segments.length - 2] ?? "";
  try {
    first = decodeURIComponent(first);
  } catch {
    return unmatched;
  }
  return first === ALIASES_SEGMENT ? `${template.slice(0, -TEMPLATE_ALIAS_PATH.length)}/templates/${ALIASES_SEGMENT}/:alias` : unmatched;
}
