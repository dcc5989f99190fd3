/**
 * The shape of a JSON request body, judged before it is parsed. Bun's JSON.parse
 * runs on the one event loop, and its cost follows how many values a body holds,
 * not its size: 2 MiB of nested brackets, of empty arrays or of one object's keys
 * cost 60-100 ms on a quiet core (several times that on a busy one), against 0.3 ms
 * for one 2 MiB string (review s87). A body of at most MAX_JSON_VALUES values (each
 * string, array, object, element and member counts) nested at most MAX_JSON_DEPTH
 * deep costs a few ms at the most; every request Bay takes is far inside both.
 *
 * The scan is linear and allocates nothing: strings are skipped with `indexOf` (a
 * structural character never occurs inside a UTF-8 sequence), so a body that is
 * mostly one long string (code, a file's text, stdin) costs next to nothing. It
 * judges structure only; whether the text is JSON at all is still the parser's.
 */

export const MAX_JSON_DEPTH = 64;
export const MAX_JSON_VALUES = 10_000;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** A body past the limits: what is wrong, for the client. */
export class JsonShapeError extends Error {}

/** Judges JSON text fed to it in pieces (a streamed body, cut anywhere). */
export class JsonShape {
  private depth = 0;
  private values = 0;
  private inString = false;
  /** In a string: the next byte is escaped (the last piece ended with an odd run of backslashes). */
  private escaped = false;

  /** Throws JsonShapeError once the text so far is past a limit. */
  feed(b: Uint8Array): void {
    const n = b.length;
    let i = 0;
    while (i < n) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        const q = b.indexOf(QUOTE, i);
        const end = q === -1 ? n : q;
        let run = 0;
        while (end - run - 1 >= i && b[end - run - 1] === BACKSLASH) run++;
        if (q === -1) {
          this.escaped = run % 2 === 1;
          return;
        }
        i = q + 1;
        // An odd run of backslashes escapes the quote: the string goes on.
        if (run % 2 === 0) {
          this.inString = false;
          this.count();
        }
        continue;
      }
      const c = b[i++]!;
      if (c === QUOTE) this.inString = true;
      else if (c === 0x5b || c === 0x7b) {
        if (++this.depth > MAX_JSON_DEPTH) throw new JsonShapeError(`the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`);
        this.count();
      } else if (c === 0x5d || c === 0x7d) this.depth--;
      else if (c === 0x2c || c === 0x3a) this.count();
    }
  }

  private count(): void {
    if (++this.values > MAX_JSON_VALUES) throw new JsonShapeError(`the JSON body holds more than ${MAX_JSON_VALUES} values`);
  }
}

/** Why a whole JSON body may not be parsed, or null when it may. */
export function jsonShapeRefusal(body: Uint8Array): string | null {
  try {
    new JsonShape().feed(body);
    return null;
  } catch (e) {
    if (e instanceof JsonShapeError) return e.message;
    throw e;
  }
}
