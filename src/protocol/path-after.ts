/**
 * The rest of a request's path after its first `segments` segments, with the
 * query, exactly as sent (percent-encoding kept); always starts with "/". For
 * `/ports/{port}/{path}` routes, in Bay and in Ship: what the server is sent.
 */
export function pathAfter(url: string, segments: number): string {
  const { pathname, search } = new URL(url);
  return `/${pathname.split("/").slice(segments).join("/")}${search}`;
}
