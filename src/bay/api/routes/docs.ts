/**
 * GET /docs: the interactive API reference (Swagger UI from swagger-ui-dist) of
 * /openapi.json. Every byte the page loads is served from here — the assets are
 * text imports that Bun embeds, in `bun run` and in the compiled binary alike —
 * and a Content-Security-Policy limits the page to this origin, so it works offline
 * and cannot call out. Swagger UI's spec-validator badge (an outside service) is off.
 * The assets (./docs-assets.ts, 1.5 MB of Swagger UI) load on the first request for
 * one: few Bays ever serve the page, and every Bay would hold them resident.
 * `/docs/` (a trailing slash, as people type it) redirects to the page: served there,
 * its relative links would resolve under `/docs/docs/`.
 */
import { Hono } from "hono";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";

/** Relative URLs, so the page also works behind a reverse proxy that mounts Bay under a prefix. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bay API reference</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/docs.js"></script>
</body>
</html>
`;

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // Swagger UI sets style attributes from script.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** `/docs/`: not an operation of the spec, a redirect to getDocs (tests/api/contract-routes.test.ts knows it). */
export const DOCS_SLASH_ROUTE = `${ops.getDocs.honoPath}/`;

export function docsRoutes(): Hono {
  const app = new Hono();
  // Relative, as the page's own links are: behind a proxy that mounts Bay under a prefix, `/prefix/docs/` → `/prefix/docs`.
  app.get(DOCS_SLASH_ROUTE, (c) => c.redirect(`../docs${new URL(c.req.url).search}`, 308));
  app.get(ops.getDocs.honoPath, (c) => {
    c.header("Content-Security-Policy", CSP);
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Cache-Control", "no-cache");
    return c.html(PAGE, 200);
  });
  app.get(ops.getDocsAsset.honoPath, validate("param", ops.getDocsAsset.params), async (c) => {
    const { docsAsset } = await import("./docs-assets.ts");
    const a = docsAsset(c.req.valid("param").asset);
    const gzip = /\bgzip\b/.test(c.req.header("accept-encoding") ?? "");
    c.header("Content-Type", a.type);
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Cache-Control", "public, max-age=3600");
    c.header("Vary", "Accept-Encoding");
    if (gzip) c.header("Content-Encoding", "gzip");
    return c.body(gzip ? a.gzip() : a.body, 200);
  });
  return app;
}
