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

/**
 * Every signal whose default action ends the process and that a handler can catch
 * (SIGPIPE and SIGPWR are ignored by the runtime; SIGKILL and SIGSTOP cannot be
 * caught): what must restore a raw terminal, since in raw mode the terminal itself
 * sends none of them and another process may send any.
 */
export const TERMINATING_SIGNALS = [
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGTERM",
  "SIGUSR1",
  "SIGUSR2",
  "SIGALRM",
  "SIGVTALRM",
  "SIGPROF",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGIO",
  "SIGTRAP",
  "SIGSYS",
] as const satisfies readonly NodeJS.Signals[];
