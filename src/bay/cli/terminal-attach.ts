/**
 * `bay sandbox shell ID`: the sandbox's terminal (`GET …/terminal`, a WebSocket)
 * on this process's own terminal, as `ssh` or `docker exec -it` would: keys go
 * over raw (Ctrl-C reaches the sandbox, not `bay`), the screen size follows the
 * local one, and `bay` exits with the shell's status. With stdin not a terminal,
 * what it carries is typed into the shell and its end is a Ctrl-D.
 *
 * Output is read from Bay only as fast as the local output takes it (a pipe that is
 * not read pauses the shell, as on a slow line, instead of filling memory); a Bay
 * that stops answering pings ends the session, and so does `Enter ~ .` on a terminal.
 */
import type { CliIo } from "./args.ts";
import { type ClientTarget, endpoint, printable, request } from "./client.ts";
import { InputWindow } from "./input-window.ts";
import { TerminalInput } from "./terminal-input.ts";
import { signalStatus } from "./signals.ts";
import { EscapeFilter, type LocalTerminal } from "./terminal-local.ts";

export { type LocalTerminal, processTerminal } from "./terminal-local.ts";

/** How long after the shell's exit Bay's close may take before the exit alone ends the session. */
const EXIT_CLOSE_GRACE_MS = 5_000;
/** How long the terminal's WebSocket may take to open (a runtime start included). */
const OPEN_TIMEOUT_MS = 120_000;
/** Reading from Bay pauses while more than PAUSE_AT bytes wait for the local output, until under RESUME_AT. */
const PAUSE_AT = 1024 * 1024;
const RESUME_AT = 256 * 1024;
const FLOW_POLL_MS = 10;
/** Writing to the local output that held the event loop longer than this (a slow terminal) yields it a poll. */
const SLOW_WRITE_MS = 20;
/** Output is written in pieces of at most this, so one frame on a slow terminal does not keep `~.` waiting for long. */
const WRITE_PIECE = 16 * 1024;
/** Output waiting past this even though reading paused: the session ends rather than fill memory. */
const HIGH_WATER = 16 * 1024 * 1024;
/** Input in flight before Bay has told its window, and how long to wait for it (input-window.ts). */
const FIRST_INPUT_WINDOW = 256 * 1024;
const INPUT_WINDOW_WAIT_MS = 3_000;

/** How often Bay is pinged, and how long it may stay silent before the session ends. */
export interface AttachOptions {
  pingMs?: number;
  silentMs?: number;
  /** How long after the shell's exit Bay's close may take (EXIT_CLOSE_GRACE_MS). */
  exitCloseGraceMs?: number;
}
const PING_MS = 15_000;
const SILENT_MS = 30_000;

/** Bun's WebSocket client: reading pauses and resumes, pings, and ends without a handshake. */
type ClientSocket = WebSocket & { pause(): boolean; resume(): boolean; ping(): void; terminate(): void };

/** How a session ended: Bay's close, or bay's own reason. */
type End = { code: number; reason: string; opened: boolean } | { own: "escape" | "silent" | "flood" | "gone" };

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
export async function attachTerminal(
  target: ClientTarget,
  id: string,
  term: LocalTerminal,
  io: CliIo,
  opts: AttachOptions = {},
): Promise<number> {
  const path = `/v1/sandboxes/${encodeURIComponent(id)}`;
  // Bay's own words for an unknown sandbox or bad credentials (a refused WebSocket handshake has none).
  await request(target, "GET", path);
  const url = endpoint(target, `${path}/terminal`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // Input goes no faster than the shell reads it (terminal-input.ts).
  const inputs = new InputWindow({ first: FIRST_INPUT_WINDOW, waitMs: INPUT_WINDOW_WAIT_MS });
  url.searchParams.set("input_acks", "true");
  let typed: TerminalInput | null = null;
  const size = term.size();
  if (size) {
    url.searchParams.set("cols", String(size.cols));
    url.searchParams.set("rows", String(size.rows));
  }
  const ws = new WebSocket(url.href, { headers: target.headers } as unknown as string[]) as ClientSocket;
  ws.binaryType = "arraybuffer";
  let restore = () => {};
  let unsubscribe = () => {};
  let finish: (end: End) => void = () => {};
  let ended = false;
  const closed = new Promise<End>((resolve) => {
    finish = (end) => {
      if (ended) return;
      ended = true;
      resolve(end);
    };
  });
  /** Ends the session at once: a close handshake would wait on a Bay that may not answer. */
  const endOwn = (own: "escape" | "silent" | "flood" | "gone") => {
    finish({ own });
    ws.terminate();
  };
  // Output that cannot be written (`bay sandbox shell … | head`): hang the shell up and end quietly.
  const ungone = term.onGone(() => endOwn("gone"));
  const opening = setTimeout(() => ws.close(), OPEN_TIMEOUT_MS);
  // Flow: while the local output holds too much, Bay's socket is not read (Bay then stops the shell's output).
  let paused = false;
  let resumeTimer: ReturnType<typeof setInterval> | undefined;
  // Output not yet written: frames Bun had read before reading paused still arrive, and written at once
  // to a slow terminal (synchronously) they kept typed keys waiting for seconds (`~.`; review s104 M1).
  const backlog: Uint8Array[] = [];
  let backlogBytes = 0;
  let writing = false;
  const waiting = () => term.pending() + backlogBytes;
  const resumeWhenDrained = () => {
    if (waiting() > RESUME_AT) return;
    clearInterval(resumeTimer);
    paused = false;
    heard();
    if (!ended) ws.resume();
  };
  const flow = () => {
    const pending = waiting();
    if (pending > HIGH_WATER) return endOwn("flood");
    if (paused || pending <= PAUSE_AT) return;
    paused = true;
    ws.pause();
    resumeTimer = setInterval(resumeWhenDrained, FLOW_POLL_MS);
  };
  // Writes since the event loop last polled: Bun dispatches frame after frame without polling while
  // Bay's socket has data, so the time is counted across frames until a timer shows it polled (a
  // timer that runs only while there is output to write).
  let polled = true;
  let busySince = 0;
  let lastWrite = 0;
  let pollSeen: ReturnType<typeof setInterval> | undefined;
  /** Writes the backlog in pieces; once writing held the loop past SLOW_WRITE_MS, a poll (keys, signals, pings). Ends with the session. */
  const writeOut = async () => {
    if (writing) return;
    writing = true;
    pollSeen ??= setInterval(() => {
      polled = true;
    }, FLOW_POLL_MS);
    if (performance.now() - lastWrite > FLOW_POLL_MS) polled = true;
    try {
      while (backlog.length > 0 && !ended) {
        const frame = backlog[0]!;
        for (let at = 0; at < frame.byteLength && !ended; at += WRITE_PIECE) {
          if (polled) {
            polled = false;
            busySince = performance.now();
          }
          const piece = frame.subarray(at, at + WRITE_PIECE);
          term.write(piece);
          backlogBytes -= piece.byteLength;
          const slow = performance.now() - busySince > SLOW_WRITE_MS;
          flow();
          // A terminal writes synchronously: typed keys (`~.`), signals and pings are served now (review s104 M1).
          if (slow) {
            await Bun.sleep(1);
            polled = true;
          }
        }
        backlog.shift();
      }
    } catch {
      // A screen that is gone (its error event ends the session): nothing more is written.
      backlog.length = 0;
      backlogBytes = 0;
    } finally {
      writing = false;
      lastWrite = performance.now();
      if (backlog.length === 0) {
        clearInterval(pollSeen);
        pollSeen = undefined;
      }
    }
  };
  /** Once all output was written, and taken by the local output (a pipe's writes wait in this process). */
  const writtenOut = async () => {
    while ((backlog.length > 0 || term.pending() > 0) && !ended) await Bun.sleep(FLOW_POLL_MS);
  };
  // Liveness: a ping every pingMs; anything from Bay counts as an answer. Unread while paused, its silence is ours.
  let lastHeard = Date.now();
  const heard = () => {
    lastHeard = Date.now();
  };
  const silentMs = opts.silentMs ?? SILENT_MS;
  // A socket that left OPEN without its close reported (as Bun's client was seen to lose one: review s110).
  let closeReported = false;
  let unreportedSince = 0;
  const keepalive = setInterval(() => {
    if (ws.readyState !== WebSocket.OPEN) {
      if (ws.readyState === WebSocket.CONNECTING || closeReported) return;
      unreportedSince ||= Date.now();
      if (Date.now() - unreportedSince >= silentMs) finish({ code: 1006, reason: "", opened: true });
      return;
    }
    if (paused) return heard();
    if (Date.now() - lastHeard >= silentMs) return endOwn("silent");
    try {
      ws.ping();
    } catch {
      // closing: its close event ends the session
    }
  }, opts.pingMs ?? PING_MS);
  ws.addEventListener("pong", heard);
  const notes: string[] = [];
  // The shell's exit comes just before Bay's close. Bun's client WebSocket has been seen to read that
  // close and never report it (1 run in ~50 that paused reading): the exit then ends the session,
  // once the output before it is written and Bay had a few seconds to close (review s109).
  let exitWatch: ReturnType<typeof setTimeout> | undefined;
  const watchExit = (m: { exit_code?: unknown; signal?: unknown }) => {
    const reason = JSON.stringify({ exit_code: m.exit_code ?? null, signal: m.signal ?? null });
    const deadline = Date.now() + (opts.exitCloseGraceMs ?? EXIT_CLOSE_GRACE_MS);
    const check = async () => {
      await writtenOut();
      if (ended) return;
      if (Date.now() < deadline) {
        exitWatch = setTimeout(check, FLOW_POLL_MS * 10);
        return;
      }
      finish({ code: 1000, reason, opened: true });
      ws.terminate();
    };
    exitWatch ??= setTimeout(check, FLOW_POLL_MS * 10);
  };
  try {
    let opened = false;
    ws.onopen = () => {
      clearTimeout(opening);
      opened = true;
      heard();
      restore = term.raw();
      unsubscribe = term.onResize(() => {
        const s = term.size();
        if (s && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resize", cols: s.cols, rows: s.rows }));
      });
      const note = (text: string) => void (notes.length < 20 && notes.push(text));
      typed = new TerminalInput(ws, inputs, term.interactive ? new EscapeFilter() : null, () => endOwn("escape"), note);
      void typed.run(term.input);
    };
    ws.onmessage = (e) => {
      heard();
      if (ended) return;
      // Nothing a frame holds may throw here: an uncaught error would leave the terminal raw.
      try {
        if (typeof e.data !== "string") {
          const frame = new Uint8Array(e.data as ArrayBuffer);
          backlog.push(frame);
          backlogBytes += frame.byteLength;
          // At once unless a slow write is being waited out (then in order, after it).
          void writeOut();
          return;
        }
        const m = JSON.parse(e.data) as {
          type?: string;
          error?: { message?: unknown };
          window?: unknown;
          bytes?: unknown;
          exit_code?: unknown;
          signal?: unknown;
        } | null;
        if (m?.type === "input_ack") {
          inputs.acked(m.bytes);
          typed?.flush();
        } else if (m?.type === "input_acks") {
          inputs.told(m.window);
          typed?.flush();
        } else if (m?.type === "exit") watchExit(m);
        else if (m?.type === "error" && notes.length < 20) notes.push(`bay: terminal: ${printable(String(m.error?.message ?? "error"))}`);
      } catch {
        // a control message that is not JSON, or a screen that is gone: nothing to show
      }
    };
    // Bay's close comes after its last output: what is still to be written is written first (unless `~.`).
    ws.onclose = (e) => {
      closeReported = true;
      void writtenOut().then(() => finish({ code: e.code, reason: e.reason, opened }));
    };
    const end = await closed;
    restore();
    restore = () => {};
    const normal = "code" in end && end.code === 1000;
    // A program in the sandbox that did not end its own way may have left the screen in its modes.
    if (!normal && !("own" in end && end.own === "gone")) term.reset();
    for (const note of notes) io.err(note);
    if ("own" in end) {
      // As a writer into a closed pipe ends: by SIGPIPE, without a word.
      if (end.own === "gone") return signalStatus("SIGPIPE")!;
      if (end.own === "escape") io.err("bay: the terminal was closed (~.)");
      else if (end.own === "silent") io.err(`bay: Bay did not answer for ${Math.round(silentMs / 1000)} s; the terminal was closed`);
      else io.err(`bay: the output is not being read (over ${HIGH_WATER >> 20} MiB waiting); the terminal was closed`);
      return 1;
    }
    if (end.code === 1000) return exitStatus(end.reason);
    if (!end.opened) io.err(`bay: could not open the terminal of ${printable(id)}`);
    else if (end.code === 1011) io.err(`bay: the terminal ended: ${safeCode(end.reason)}`);
    else io.err(`bay: the connection to Bay ended (${end.code})`);
    return 1;
  } finally {
    clearTimeout(opening);
    clearInterval(keepalive);
    clearInterval(resumeTimer);
    clearInterval(pollSeen);
    clearTimeout(exitWatch);
    restore();
    unsubscribe();
    ungone();
  }
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
