/**
 * Whether `du` gave up on a workspace because code in the sandbox kept changing it (409
 * `changing`, try again) or because of a fault (500). Read from du's stderr line by line as
 * it streams, all of it, not only the first bytes the helper keeps for the log: a sandbox
 * that fills that cap with race lines cannot hide a fault's line behind them.
 */

/**
 * du's words when the sandbox moved or replaced directories under its walk, one line
 * each: an entry strictly inside the workspace gone or no longer a directory (also as
 * fts's own "fts_read failed", the commonest: below the depth it keeps open, fts climbs
 * back by `..`), a directory met again inside itself (a cycle: one moved below itself as
 * du went), or du's own assertion on the walk's levels. Paths may come quoted ('…', or
 * "…" for a name holding a ').
 */
const RACE_LINES = [
  /^du: (?:cannot access |cannot read directory |fts_read failed: )?["']?\/workspace\/[^\n]+: (?:No such file or directory|Not a directory)$/,
  /^du: WARNING: Circular directory structure\.$/,
  /^du: [^\n]*: Assertion [^\n]* failed\.$/,
];

/** du killed by SIGABRT or SIGSEGV: it crashes, sometimes without a word, when its walk's tree changes under it. */
const CRASHED = new Set([128 + 6, 128 + 11]);

/**
 * The longest line read whole: a path of PATH_MAX bytes shell-quoted byte by byte ($'\377')
 * is under 32 KiB. A longer one is no line du says of a race, so it counts as a fault.
 */
const MAX_LINE = 64 * 1024;

export class DuVerdict {
  private readonly decoder = new TextDecoder("utf-8");
  private partial = "";
  /** Within a line past MAX_LINE: the rest of it is skipped. */
  private overlong = false;
  private said = 0;
  private fault = false;
  private crashed = false;

  /** A piece of the helper's stderr, in order. */
  feed(chunk: Uint8Array): void {
    const lines = (this.partial + this.decoder.decode(chunk, { stream: true })).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) {
      if (this.overlong) this.overlong = false;
      else this.line(line);
    }
    if (this.partial.length > MAX_LINE) {
      this.fault = true;
      this.overlong = true;
      this.partial = "";
    }
  }

  /**
   * Every line du itself said (`du: …`; a cycle warning's own lines follow it) is a race
   * line, and there is one, or du crashed (the script's last line, `du exit N`). A fault
   * of the volume (an I/O error, the root itself gone) among them is not a race.
   */
  walkedAway(): boolean {
    const rest = this.partial + this.decoder.decode();
    this.partial = "";
    if (rest !== "" && !this.overlong) this.line(rest);
    this.overlong = false;
    return (this.said > 0 || this.crashed) && !this.fault;
  }

  private line(line: string): void {
    const exit = /^du exit (\d+)$/.exec(line);
    if (exit) this.crashed = CRASHED.has(Number(exit[1]));
    else if (line.startsWith("du: ")) {
      this.said++;
      if (!RACE_LINES.some((race) => race.test(line))) this.fault = true;
    }
  }
}
