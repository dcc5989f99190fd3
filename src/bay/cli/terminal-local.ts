/**
 * The local side of `bay sandbox shell`: this process's own terminal (raw mode,
 * its size, how much output waits to be written), its clean-up after an abnormal
 * end, and the ssh-style escape (`Enter ~ .`) that ends a session whatever Bay does.
 */
import { writeSync } from "node:fs";
import { onEndingSignals, TERMINATING_SIGNALS } from "./signals.ts";

/** What the attachment needs of the local side (process.stdin/stdout by default, a fake in tests). */
export interface LocalTerminal {
  /** What is typed or piped in; ends at end of input. */
  input: AsyncIterable<Uint8Array>;
  write(bytes: Uint8Array): void;
  /** Bytes written but not yet taken by the output (a pipe nobody reads, a slow terminal). */
  pending(): number;
  /** The screen's size, when stdout is a terminal. */
  size(): { cols: number; rows: number } | undefined;
  /** Calls `changed` whenever the screen's size changes; returns the unsubscribe. */
  onResize(changed: () => void): () => void;
  /** Puts the input terminal in raw mode, if it is one; returns what restores it. */
  raw(): () => void;
  /** Calls `gone` if the output can no longer be written (a closed pipe); returns the unsubscribe. */
  onGone(gone: () => void): () => void;
  /** Whether input is typed at a terminal: only then is `Enter ~ .` the escape that ends the session. */
  interactive: boolean;
  /** After an abnormal end, turns off the screen modes a program in the sandbox may have left on. */
  reset(): void;
}

/**
 * Modes a full-screen program sets and would undo at its own end: the cursor saved
 * (so that leaving an alternate screen that is not on does not move it), the normal
 * screen, bracketed paste, a visible cursor, mouse reporting, plain attributes.
 */
export const SCREEN_RESET = "\x1b7\x1b[?1049l\x1b[?2004l\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[0m";

function resetScreen(): void {
  if (!process.stdout.isTTY) return;
  try {
    // Synchronous: this also runs just before the process exits on a signal.
    writeSync(1, SCREEN_RESET);
  } catch {
    // the terminal is gone: nothing to reset
  }
}

export function processTerminal(): LocalTerminal {
  // Counted here: Bun's process.stdout.writableLength stays 0 however much waits for a pipe (review s104 H1).
  let pending = 0;
  return {
    input: process.stdin as unknown as AsyncIterable<Uint8Array>,
    write(bytes) {
      const n = bytes.byteLength;
      pending += n;
      process.stdout.write(bytes, () => {
        pending -= n;
      });
    },
    pending: () => pending,
    size() {
      const { columns: cols, rows } = process.stdout;
      // A terminal that reports no size (0×0, as under `script` without one) leaves Bay's default.
      return process.stdout.isTTY && cols > 0 && rows > 0 ? { cols, rows } : undefined;
    },
    onResize(changed) {
      process.stdout.on("resize", changed);
      return () => process.stdout.off("resize", changed);
    },
    raw() {
      if (!process.stdin.isTTY) return () => {};
      process.stdin.setRawMode(true);
      // Killed while raw (by any signal that would end bay), the terminal is given back as it was.
      const stopWatching = onEndingSignals(TERMINATING_SIGNALS, () => {
        process.stdin.setRawMode(false);
        resetScreen();
      });
      // Stopped (Ctrl-Z) and continued (`fg`), the shell gives the terminal back cooked: raw again (review s104 L2).
      const again = () => process.stdin.setRawMode(true);
      process.on("SIGCONT", again);
      return () => {
        stopWatching();
        process.off("SIGCONT", again);
        process.stdin.setRawMode(false);
      };
    },
    onGone(gone) {
      process.stdout.on("error", gone);
      return () => process.stdout.off("error", gone);
    },
    interactive: process.stdin.isTTY === true,
    reset: resetScreen,
  };
}

const CR = 13;
const LF = 10;
const TILDE = 126;
const DOT = 46;

/**
 * The escape as ssh has it: after Enter (or at the start), `~` is held; `~.` ends the
 * session, `~~` sends one `~`, and `~` before anything else sends both. `filter`
 * answers the bytes to send; once `~.` was typed, those before it, and `escaped` is set
 * (what was typed before the escape in the same read still reaches the shell: review s104 L5).
 */
export class EscapeFilter {
  private lineStart = true;
  private tilde = false;
  escaped = false;

  filter(chunk: Uint8Array): Uint8Array {
    if (this.escaped) return new Uint8Array(0);
    if (!this.tilde && !chunk.includes(TILDE)) {
      if (chunk.length > 0) this.lineStart = chunk[chunk.length - 1] === CR || chunk[chunk.length - 1] === LF;
      return chunk;
    }
    const out: number[] = [];
    for (const b of chunk) {
      if (this.tilde) {
        this.tilde = false;
        if (b === DOT) {
          this.escaped = true;
          return Uint8Array.from(out);
        }
        if (b !== TILDE) out.push(TILDE);
        out.push(b);
        this.lineStart = b === CR || b === LF;
      } else if (this.lineStart && b === TILDE) {
        this.tilde = true;
      } else {
        out.push(b);
        this.lineStart = b === CR || b === LF;
      }
    }
    return Uint8Array.from(out);
  }
}
