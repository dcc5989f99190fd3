/**
 * `bay sandbox shell ID`: the sandbox's terminal (`GET …/terminal`, a WebSocket)
 * on this process's own terminal, as `ssh` or `docker exec -it` would: keys go
 * over raw (Ctrl-C reaches the sandbox, not `bay`), the screen size follows the
 * local one, and `bay` exits with the shell's status. With stdin not a terminal,
 * what it carries is typed into the shell and its end is a Ctrl-D.
 */
import type { CliIo } from "./args.ts";
import { type ClientTarget, endpoint, printable, request } from "./client.ts";
import { onEndingSignals, signalStatus } from "./signals.ts";

/** What the attachment needs of the local side (process.stdin/stdout by default, a fake in tests). */
export interface LocalTerminal {
  /** What is typed or piped in; ends at end of input. */
  input: AsyncIterable<Uint8Array>;
  write(bytes: Uint8Array): void;
  /** The screen's size, when stdout is a terminal. */
  size(): { cols: number; rows: number } | undefined;
  /** Calls `changed` whenever the screen's size changes; returns the unsubscribe. */
  onResize(changed: () => void): () => void;
  /** Puts the input terminal in raw mode, if it is one; returns what restores it. */
  raw(): () => void;
  /** Calls `gone` if the output can no longer be written (a closed pipe); returns the unsubscribe. */
  onGone(gone: () => void): () => void;
}

/** End of input in the sandbox's shell, once piped input ends. */
const CTRL_D = new Uint8Array([4]);
const EOF_REPEAT_MS = 1000;
/** Signals whose default ends bay without a word, and which a terminal in raw mode no longer sends itself. */
const ENDING_SIGNALS = ["SIGTERM", "SIGHUP", "SIGQUIT"] as const;
/** How long the terminal's WebSocket may take to open (a runtime start included). */
const OPEN_TIMEOUT_MS = 120_000;

export function processTerminal(): LocalTerminal {
  return {
    input: process.stdin as unknown as AsyncIterable<Uint8Array>,
    write: (bytes) => process.stdout.write(bytes),
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
      // Killed while raw (by a signal that would end bay), the terminal is given back as it was.
      const stopWatching = onEndingSignals(ENDING_SIGNALS, () => process.stdin.setRawMode(false));
      return () => {
        stopWatching();
        process.stdin.setRawMode(false);
      };
    },
    onGone(gone) {
      process.stdout.on("error", gone);
      return () => process.stdout.off("error", gone);
    },
  };
}

/**
 * The exit status a shell's end stands for: its code, or 128 + the signal's
 * number; 1 for anything else (a code outside 0–255, an unknown signal, no JSON).
 */
export function exitStatus(reason: string): number {
  try {
    const r = JSON.parse(reason) as { exit_code?: unknown; signal?: unknown } | null;
    const code = r?.exit_code;
    if (typeof code === "number") return Number.isInteger(code) && code >= 0 && code <= 255 ? code : 1;
    return signalStatus(r?.signal) ?? 1;
  } catch {
    return 1;
  }
}

/** Attaches `term` to sandbox `id`'s terminal until the shell ends; returns `bay`'s exit code. */
export async function attachTerminal(target: ClientTarget, id: string, term: LocalTerminal, io: CliIo): Promise<number> {
  const path = `/v1/sandboxes/${encodeURIComponent(id)}`;
  // Bay's own words for an unknown sandbox or bad credentials (a refused WebSocket handshake has none).
  await request(target, "GET", path);
  const url = endpoint(target, `${path}/terminal`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const size = term.size();
  if (size) {
    url.searchParams.set("cols", String(size.cols));
    url.searchParams.set("rows", String(size.rows));
  }
  const ws = new WebSocket(url.href, { headers: target.headers } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  let restore = () => {};
  let unsubscribe = () => {};
  // Output that cannot be written (`bay sandbox shell … | head`): hang the shell up and end quietly.
  let gone = false;
  const ungone = term.onGone(() => {
    gone = true;
    ws.close();
  });
  const opening = setTimeout(() => ws.close(), OPEN_TIMEOUT_MS);
  const notes: string[] = [];
  try {
    const closed = new Promise<{ code: number; reason: string; opened: boolean }>((resolve) => {
      let opened = false;
      ws.onopen = () => {
        clearTimeout(opening);
        opened = true;
        restore = term.raw();
        unsubscribe = term.onResize(() => {
          const s = term.size();
          if (s && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resize", cols: s.cols, rows: s.rows }));
        });
        void pump(term.input, ws);
      };
      ws.onmessage = (e) => {
        // Nothing a frame holds may throw here: an uncaught error would leave the terminal raw.
        try {
          if (typeof e.data !== "string") return term.write(new Uint8Array(e.data as ArrayBuffer));
          const m = JSON.parse(e.data) as { type?: string; error?: { message?: unknown } } | null;
          if (m?.type === "error") notes.push(`bay: terminal: ${printable(String(m.error?.message ?? "error"))}`);
        } catch {
          // a control message that is not JSON, or a screen that is gone: nothing to show
        }
      };
      ws.onclose = (e) => resolve({ code: e.code, reason: e.reason, opened });
    });
    const end = await closed;
    restore();
    restore = () => {};
    for (const note of notes) io.err(note);
    if (end.code === 1000) return exitStatus(end.reason);
    // As a writer into a closed pipe ends: by SIGPIPE, without a word.
    if (gone) return signalStatus("SIGPIPE")!;
    if (!end.opened) io.err(`bay: could not open the terminal of ${id}`);
    else if (end.code === 1011) io.err(`bay: the terminal ended: ${safeCode(end.reason)}`);
    else io.err(`bay: the connection to Bay ended (${end.code})`);
    return 1;
  } finally {
    clearTimeout(opening);
    restore();
    unsubscribe();
    ungone();
  }
}

/**
 * Sends what is typed or piped in; once input ends, a Ctrl-D, again every second
 * until the shell is gone. One is not always enough: typed ahead while a command
 * runs, the terminal's line discipline can drop it before the shell reads again.
 */
async function pump(input: AsyncIterable<Uint8Array>, ws: WebSocket): Promise<void> {
  try {
    for await (const chunk of input) {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(chunk);
    }
  } catch {
    // The input failed (a closed terminal): the shell is hung up when the socket goes.
    ws.close();
    return;
  }
  const eof = () => {
    if (ws.readyState === WebSocket.OPEN) ws.send(CTRL_D);
    else clearInterval(again);
  };
  const again = setInterval(eof, EOF_REPEAT_MS);
  again.unref?.();
  eof();
}

/** The `code` of a 1011 close reason (`{"code":…}`), or the reason itself, shortened. */
function safeCode(reason: string): string {
  try {
    const code = (JSON.parse(reason) as { code?: unknown }).code;
    if (typeof code === "string") return printable(code);
  } catch {
    // not JSON
  }
  return printable(reason.slice(0, 200)) || "closed by Bay";
}
