// Swagger UI's files, imported as text (`with { type: "text" }`) so that Bun, and
// `bun build --compile`, embed them: the page works offline and from dist/bay alone.
declare module "swagger-ui-dist/swagger-ui-bundle.js" {
  const text: string;
  export default text;
}
declare module "swagger-ui-dist/swagger-ui.css" {
  const text: string;
  export default text;
}
