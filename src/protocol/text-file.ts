/**
 * What a text read of a file answers: its UTF-8 text, or nothing when the file is
 * not text (invalid UTF-8, or a NUL byte, which no text file holds). One rule for
 * both text reads, a sandbox's (Ship, src/ship/filesystem/files.ts) and a
 * workspace's without a runtime (src/bay/domain/workspace-files.ts): each refuses
 * a file that is not text as `validation_error` with `reason: "binary"`, pointing
 * to its download route, instead of answering bytes it would have to change.
 */
// ignoreBOM: a leading byte-order mark is part of the text (U+FEFF), so a read-modify-write keeps it.
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The file's text, or null when it is not UTF-8 text. */
export function utf8Text(bytes: Uint8Array): string | null {
  if (bytes.includes(0)) return null;
  try {
    return strict.decode(bytes);
  } catch {
    return null;
  }
}

/** The `validation_error` for a text read of a file that is not text; `download` is the route that serves it. */
export function notText(path: string, download: string): { message: string; details: { path: string; reason: "binary" } } {
  return { message: `file is not UTF-8 text: ${path}; download binary files with ${download}`, details: { path, reason: "binary" } };
}
