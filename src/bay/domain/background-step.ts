import { errorMessage, type Logger } from "../logger.ts";

/**
 * Runs one step of a background beat (reaper, reconciler). A step that throws is
 * counted in `report.errors` and logged as a warning; the beat goes on with its
 * next step, and the failed one runs again on the next beat.
 */
export async function runBackgroundStep(
  logger: Logger,
  beat: "reaper" | "reconcile",
  report: { errors: number },
  name: string,
  fn: () => Promise<void>,
): Promise<void> {
  try {
    await fn();
  } catch (e) {
    report.errors++;
    logger.warn(`${beat} step failed; retrying on the next beat`, { step: name, error: errorMessage(e) });
  }
}
