/** How the CLI ends on a signal: as the signal itself would, after its own clean-up. */
import { constants } from "node:os";

const SIGNALS = constants.signals as Record<string, number>;

/** The exit status a process ended by the signal `name` has (128 + its number); null for a name the platform does not know. */
export function signalStatus(name: unknown): number | null {
  return typeof name === "string" && Object.hasOwn(SIGNALS, name) ? 128 + SIGNALS[name]! : null;
}

/**
 * Until the returned function is called, each of `signals` runs `cleanUp` and
 * ends the process with that signal's status (a Ctrl-C'd command exits 130).
 */
export function onEndingSignals(signals: readonly NodeJS.Signals[], cleanUp: () => void): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    cleanUp();
    process.exit(signalStatus(signal) ?? 1);
  };
  for (const signal of signals) process.once(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
