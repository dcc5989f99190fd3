/** `bay serve` (also `bay` alone): runs the server with the environment's configuration until SIGINT/SIGTERM. */
import { loadConfigOrExit, main } from "../main.ts";
import { errorMessage } from "../logger.ts";
import { allowOnly, type CliIo, parseArgs } from "./args.ts";

export const SERVE_USAGE = `usage: bay serve

Runs Bay. Configuration comes from BAY_CONFIG and BAY_* variables (see the README);
\`bay\` with no command does the same.`;

export async function runServe(argv: string[], io: CliIo): Promise<number | "serving"> {
  try {
    const args = parseArgs(argv, {});
    if (args.flags.has("help")) {
      io.out(SERVE_USAGE);
      return 0;
    }
    allowOnly(args, [], 0);
  } catch (e) {
    io.err(`bay: ${errorMessage(e)}\n\n${SERVE_USAGE}`);
    return 2;
  }
  await main(loadConfigOrExit());
  return "serving";
}
