import { randomBytes } from "node:crypto";
import { ShipError } from "../errors.ts";
import { startError } from "../paths.ts";
import { type TerminalOptions, TerminalSession } from "./terminal-session.ts";

export interface TerminalRegistryOptions {
  workspace: string;
  maxTerminals: number;
  /** A terminal nobody attaches to within this is hung up. */
  attachMs: number;
}

/** Terminals of this Ship: created by POST, attached once over WebSocket, forgotten when the shell ends. */
export class TerminalRegistry {
  private readonly terminals = new Map<string, TerminalSession>();

  constructor(private readonly opts: TerminalRegistryOptions) {}

  /**
   * Starts a login shell on a new PTY (in `start.cwd`, absolute and checked; `cwdPath`, the
   * same relative to the workspace, is what an error about it names), or throws quota_exceeded at the cap.
   */
  create(cols: number, rows: number, start: Pick<TerminalOptions, "cwd" | "env"> & { cwdPath?: string } = {}): string {
    if (this.terminals.size >= this.opts.maxTerminals) {
      throw new ShipError("quota_exceeded", `too many terminals (max ${this.opts.maxTerminals})`, {
        details: { limit: this.opts.maxTerminals, running: this.terminals.size },
      });
    }
    let session: TerminalSession;
    try {
      session = new TerminalSession({ cols, rows, workspace: this.opts.workspace, cwd: start.cwd, env: start.env });
    } catch (err) {
      throw startError(err, { absolute: start.cwd ?? this.opts.workspace, relative: start.cwdPath ?? "." }, "terminal");
    }
    const id = `term-${randomBytes(8).toString("hex")}`;
    this.terminals.set(id, session);
    void session.done.finally(() => this.terminals.delete(id));
    const timer = setTimeout(() => {
      if (!session.attached) session.hangup();
    }, this.opts.attachMs);
    timer.unref?.();
    return id;
  }

  /** A terminal not attached yet; 404 when unknown or ended, 409 when already taken. */
  unclaimed(id: string): TerminalSession {
    const session = this.terminals.get(id);
    if (!session) throw new ShipError("not_found", `terminal not found: ${id}`, { details: { terminal_id: id } });
    if (session.claimed) throw new ShipError("conflict", `terminal ${id} is already attached`, { details: { terminal_id: id } });
    return session;
  }

  /** How many terminals run. */
  get size(): number {
    return this.terminals.size;
  }

  /** Kills every terminal (Ship shutdown). */
  killAll(): void {
    for (const session of this.terminals.values()) session.kill();
  }
}
