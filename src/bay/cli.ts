/**
 * The `bay` command: the server and its tools in one program (`dist/bay` is
 * this file compiled). Each command group lives in src/bay/cli/.
 *
 *   bay [serve]                      run Bay
 *   bay keys create|list|revoke …    API keys, against Bay's database
 *   bay images build …               build the runtime images (works from dist/bay alone)
 *   bay doctor                       check this machine, with a fix for each problem
 *   bay sandbox create|ls|exec|shell|stats|cp|forward|rm …  use a Bay over HTTP
 *   bay mcp --url … --token …        stdio MCP bridge to a Bay's /mcp
 *   bay version                      the version (also --version)
 */
import { type CliIo, UsageError } from "./cli/args.ts";
import { errorMessage } from "./logger.ts";

export type { CliIo } from "./cli/args.ts";

export const USAGE = `usage: bay <command> [options]     (bay <command> --help for its options)

commands:
  serve                              run Bay (the default when no command is given)
  keys create|list|revoke            manage API keys in Bay's database
  images build                       build the Ship runtime images on the Docker engine
  doctor                             check the engine, cgroups, images, database, network rules, port, disk
  sandbox create|ls|exec|shell|stats|cp|forward|rm  use a running Bay (BAY_URL, BAY_TOKEN)
  mcp                                stdio MCP server relaying to a Bay's POST /mcp
  version                            print the version (also --version)

Configuration comes from BAY_CONFIG and BAY_* variables, as for the server.`;

/**
 * Runs the CLI with `argv` (without the runtime and script), writing through `io`.
 * Returns the exit code (0 ok, 1 failure, 2 bad usage or configuration), or
 * "serving" when the server runs on (it exits on SIGINT/SIGTERM).
 */
const GROUPS = new Set(["serve", "keys", "images", "doctor", "sandbox", "mcp"]);

export async function runCli(argv: string[], io: CliIo): Promise<number | "serving"> {
  const [group, ...rest] = argv;
  switch (group) {
    // Each group is loaded when used: a client command never loads the server, nor the server the MCP client.
    case undefined:
    case "serve":
      return (await import("./cli/serve.ts")).runServe(rest, io);
    case "keys":
      return (await import("./cli/keys.ts")).runKeys(rest, io);
    case "images":
      return (await import("./cli/images.ts")).runImages(rest, io);
    case "doctor":
      return (await import("./cli/doctor.ts")).runDoctor(rest, io);
    case "sandbox":
      return (await import("./cli/sandbox.ts")).runSandbox(rest, io);
    case "mcp":
      return (await import("./cli/mcp.ts")).runMcp(rest, io);
    case "version":
    case "--version":
    case "-V":
      io.out(`bay ${(await import("../../package.json")).version}`);
      return 0;
    case "help":
    case "--help":
    case "-h":
      // `bay help keys` is `bay keys --help`.
      if (rest[0] && GROUPS.has(rest[0])) return runCli([rest[0], "--help"], io);
      io.out(USAGE);
      return 0;
    default:
      io.err(`bay: ${errorMessage(new UsageError(`unknown command: ${group}`))}\n\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) {
  // Writes to a pipe are queued: exiting before the last one is done would cut the output
  // short. They complete in order, so waiting for the last of each stream is enough.
  const written = { out: Promise.resolve(), err: Promise.resolve() };
  const writer = (stream: NodeJS.WriteStream, key: keyof typeof written) => (text: string) => {
    written[key] = new Promise<void>((done) => stream.write(text, () => done()));
  };
  const out = writer(process.stdout, "out");
  const err = writer(process.stderr, "err");
  const code = await runCli(process.argv.slice(2), {
    out: (line) => out(`${line}\n`),
    err: (line) => err(`${line}\n`),
    write: (stream, text) => (stream === "out" ? out : err)(text),
    env: process.env,
    outputGone(gone) {
      process.stdout.on("error", gone);
      return () => process.stdout.off("error", gone);
    },
  });
  if (code !== "serving") {
    await Promise.all([written.out, written.err]);
    process.exit(code);
  }
}
