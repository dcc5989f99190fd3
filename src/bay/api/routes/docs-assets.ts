/**
 * The files of GET /docs/assets/{asset}: Swagger UI's bundle and stylesheet
 * (text imports, which Bun embeds in `bun run` and in the compiled binary alike)
 * and the page's start-up script. Loaded by ./docs.ts on the first request for
 * an asset, not when Bay starts.
 */
import swaggerUiBundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import swaggerUiCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };

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

export interface Asset {
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

/** One asset by the name the route validated (the spec's enum, so always present). */
export function docsAsset(name: string): Asset {
  const a = ASSETS[name];
  if (!a) throw new Error(`no docs asset ${name}`);
  return a;
}
