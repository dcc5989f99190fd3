/**
 * GET /docs: the interactive API reference (Swagger UI from swagger-ui-dist) of
 * /openapi.json. Every byte the page loads is served from here — the assets are
 * text imports that Bun embeds, in `bun run` and in the compiled binary alike —
 * and a Content-Security-Policy limits the page to this origin, so it works offline
 * and cannot call out. Swagger UI's spec-validator badge (an outside service) is off.
 */
import { Hono } from "hono";
import swaggerUiBundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import swaggerUiCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
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

/** Swagger UI's start-up, as a file of its own so the CSP needs no inline script. */
const INIT = `"use strict";
window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayRequestDuration: true,
  persistAuthorization: false,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
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

interface Asset {
  type: string;
  body: Uint8Array<ArrayBuffer>;
  /** Compressed on first request (about 35 ms for the bundle), not at every start. */
  gzip: () => Uint8Array<ArrayBuffer>;
}

function asset(type: string, text: string): Asset {
  const body = new TextEncoder().encode(text);
  let gz: Uint8Array<ArrayBuffer> | undefined;
  return { type, body, gzip: () => (gz ??= Bun.gzipSync(body)) };
}

const ASSETS: Record<string, Asset> = {
  "swagger-ui-bundle.js": asset("text/javascript; charset=utf-8", swaggerUiBundle),
  "swagger-ui.css": asset("text/css; charset=utf-8", swaggerUiCss),
  "docs.js": asset("text/javascript; charset=utf-8", INIT),
};

export function docsRoutes(): Hono {
  const app = new Hono();
  app.get(ops.getDocs.honoPath, (c) => {
    c.header("Content-Security-Policy", CSP);
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Cache-Control", "no-cache");
    return c.html(PAGE, 200);
  });
  app.get(ops.getDocsAsset.honoPath, validate("param", ops.getDocsAsset.params), (c) => {
    const a = ASSETS[c.req.valid("param").asset]!;
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
