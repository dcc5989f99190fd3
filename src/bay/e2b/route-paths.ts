/**
 * Where E2B's alias lookup (spec path `/templates/aliases/{alias}`) is routed, under
 * the E2B prefix: see control-routes.ts. Its own module so that the request metrics
 * can name the route without loading the E2B API.
 */
export const TEMPLATE_ALIAS_PATH = "/templates/:templateID/:alias";
