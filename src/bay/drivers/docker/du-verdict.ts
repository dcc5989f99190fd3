/**
 * Whether `du` gave up on a workspace because code in the sandbox kept changing it (409
 * `changing`, try again) or because of a fault (500). Read from du's stderr line by line as
 * it streams, all of it, not only the first bytes the helper keeps for the log: a sandbox
 * that fills that cap with race lines cannot hide a fault's line behind them. Each line is
 * judged by its two ends (its first HEAD and last TAIL characters) with plain string checks:
 * constant memory and linear time however long a line is (a path deep in the tree makes
 * lines of 60 KiB and more) and however the stream is cut into chunks (review s84).
 */

/** Characters of a line's start kept: any line du says of a race or a fault is judged by its start and its end. */
const HEAD = 512;
/** Characters of a line's end kept: the longest ending judged is ": No such file or directory". */
const TAIL = 64;

/** How du starts a line about an entry it met, before the entry's path (quoted or not). */
const ENTRY_STARTS = ["du: cannot access ", "du: cannot read directory ", "du: fts_read failed: ", "du: "];
const INSIDE = "/workspace/";
/** An entry inside the workspace gone, or no longer a directory, under du's walk. */
const RACE_ENDS = [": No such file or directory", ": Not a directory"];
/** A directory of the workspace its user may not read: neither a race nor a fault (du still counts the rest). */
const UNREADABLE_END = ": Permission denied";
/** A directory met again inside itself (one moved below itself as du went); the warning's own lines follow it. */
const CYCLE = "du: WARNING: Circular directory structure.";

/** du killed by SIGABRT or SIGSEGV: it crashes, sometimes without a word, when its walk's tree changes under it. */
const CRASHED = new Set([128 + 6, 128 + 11]);

interface Line {
  head: string;
  tail: string;
  length: number;
}

/**
 * Where the name after an entry start's "/workspace/" begins (the path maybe quoted), counted
 * so that a line must be longer than it plus its ending to name something: -1 when the
 * line is about no entry inside the workspace.
 */
function insideAt(head: string): number {
  for (const start of ENTRY_STARTS) {
    if (!head.startsWith(start)) continue;
    let at = start.length;
    const quoted = head[at] === "'" || head[at] === '"';
    if (quoted) at++;
    // A quoted path ends with its quote: the name is what comes before it.
    if (head.startsWith(INSIDE, at)) return at + INSIDE.length + (quoted ? 1 : 0);
  }
  return -1;
}

/** What one line of du's says: an entry of the workspace raced (or du's own words on a race), a directory it may not read, a fault. */
function judge({ head, tail, length }: Line): "race" | "unreadable" | "fault" {
  if (length === CYCLE.length && head === CYCLE) return "race";
  // du's assertion on its walk's levels (`du: src/du.c:638: process_file: Assertion '…' failed.`): a short line.
  if (length <= HEAD && head.includes(": Assertion ") && head.endsWith(" failed.")) return "race";
  const inside = insideAt(head);
  if (inside < 0) return "fault";
  // Something (the entry's name) between the workspace's "/" and the ending.
  const ends = (end: string) => tail.endsWith(end) && length - end.length > inside;
  if (RACE_ENDS.some(ends)) return "race";
  return ends(UNREADABLE_END) ? "unreadable" : "fault";
}

export class DuVerdict {
  private readonly decoder = new TextDecoder("utf-8");
  private line: Line = { head: "", tail: "", length: 0 };
  private said = 0;
  private fault = false;
  private crashed = false;

  /** A piece of the helper's stderr, in order. */
  feed(chunk: Uint8Array): void {
    this.add(this.decoder.decode(chunk, { stream: true }));
  }

  /**
   * Every line du itself said (`du: …`; a cycle warning's own lines follow it) is a race
   * line (or one about a directory it may not read), and its last attempt said a race line
   * or crashed (the script's last line, `du exit N`). A fault of the volume (an I/O error,
   * the root itself gone) in any attempt is not a race.
   */
  walkedAway(): boolean {
    this.add(this.decoder.decode());
    if (this.line.length > 0) this.end();
    return (this.said > 0 || this.crashed) && !this.fault;
  }

  private add(text: string): void {
    let from = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", from)) {
      this.extend(text, from, nl);
      this.end();
      from = nl + 1;
    }
    this.extend(text, from, text.length);
  }

  /** The line goes on with text[from, to). */
  private extend(text: string, from: number, to: number): void {
    if (from >= to) return;
    const line = this.line;
    if (line.head.length < HEAD) line.head += text.slice(from, Math.min(to, from + HEAD - line.head.length));
    line.tail = (line.tail + text.slice(Math.max(from, to - TAIL), to)).slice(-TAIL);
    line.length += to - from;
  }

  private end(): void {
    const line = this.line;
    this.line = { head: "", tail: "", length: 0 };
    // Once a fault is seen the answer is a fault: nothing more is looked at.
    if (this.fault) return;
    const script = line.length <= HEAD ? /^du (attempt|exit) (\d+)$/.exec(line.head) : null;
    if (script?.[1] === "attempt") {
      // A new attempt: only the last one's races and end count (an earlier race does not
      // excuse a later attempt that died without a word); a fault in any counts.
      this.said = 0;
      this.crashed = false;
    } else if (script) this.crashed = CRASHED.has(Number(script[2]));
    else if (line.head.startsWith("du: ")) {
      const said = judge(line);
      if (said === "race") this.said++;
      else if (said === "fault") this.fault = true;
    }
  }
}
