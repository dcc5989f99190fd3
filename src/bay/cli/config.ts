import { type BayConfig, ConfigError, loadConfig } from "../config.ts";
import { errorMessage } from "../logger.ts";
import type { CliIo } from "./args.ts";

/** Bay's configuration for a command, or undefined once it has said why it cannot be loaded (the command exits 2). */
export function loadCliConfig(io: CliIo): BayConfig | undefined {
  try {
    return loadConfig(io.env);
  } catch (e) {
    io.err(e instanceof ConfigError ? e.message : `bay: cannot load configuration: ${errorMessage(e)}`);
    return undefined;
  }
}
