// Bun imports these as text (`with { type: "text" }`); this tells TypeScript.
declare module "*.py" {
  const source: string;
  export default source;
}
