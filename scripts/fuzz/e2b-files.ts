/**
 * envd's `POST /files` as a multipart form, the way the E2B SDKs write files:
 * `file` parts named by their path, or one part written to `?path=`. Valid
 * forms, and the ones Bay must refuse: a path that leaves the sandbox's files,
 * several parts for one `path`, no file part, a `file` field that is no file,
 * a part with no name and no `path`, a form that never ends.
 */
import type { Rng } from "../lib/rng.ts";
import { HOSTILE_PATHS } from "./corpus.ts";
import type { Draft } from "./draft.ts";
import { e2bEscapes } from "./e2b.ts";

const part = (boundary: string, filename: string | undefined, data: string, name = "file") =>
  `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? "" : `; filename="${filename}"`}\r\n` +
  `${filename === undefined ? "" : "Content-Type: application/octet-stream\r\n"}\r\n${data}\r\n`;

export function e2bMultipart(rng: Rng, d: Draft): void {
  const boundary = `fzb${rng.uint32().toString(36)}`;
  const kind = rng.weighted({
    one: 3,
    toPath: 2,
    two: 2,
    twoToPath: 1,
    hostileName: 3,
    noFile: 1,
    fileField: 1,
    nameless: 1,
    unterminated: 1,
  });
  const pathQuery = (path: string | undefined) => {
    d.query = d.query.filter(([k]) => k !== "path");
    if (path !== undefined) d.query.push(["path", path]);
  };
  const end = `--${boundary}--\r\n`;
  let body = "";
  let mutation: string = kind;
  switch (kind) {
    case "one":
      pathQuery(undefined);
      body = part(boundary, rng.pick(["/home/user/fuzz/mp.txt", "fuzz/mp/deep.txt", "~/fuzz/mp2.txt"]), "multipart\n") + end;
      break;
    case "toPath":
      pathQuery("/home/user/fuzz/mp-path.txt");
      body = part(boundary, "blob", "to path\n") + end;
      break;
    case "two":
      pathQuery(undefined);
      body = part(boundary, "fuzz/mp-a.txt", "a\n") + part(boundary, "/home/user/fuzz/mp-b.txt", "b\n") + end;
      break;
    case "twoToPath":
      pathQuery("/home/user/fuzz/mp-path.txt");
      body = part(boundary, "a", "a\n") + part(boundary, "b", "b\n") + end;
      d.reject.push("two file parts for one `path`");
      break;
    case "hostileName": {
      pathQuery(undefined);
      const [tag, name] = rng.pick([...HOSTILE_PATHS, ["outside", "/etc/fuzz.txt"], ["home-prefix", "/home/userx/a"]] as const);
      mutation = `part named ${tag}`;
      body = part(boundary, name, "x") + end;
      if (e2bEscapes(name)) d.reject.push("a part's name leaves the sandbox's files");
      break;
    }
    case "noFile":
      body = part(boundary, undefined, "/home/user/fuzz/x", "path") + end;
      d.reject.push("no `file` part");
      break;
    case "fileField":
      body = part(boundary, undefined, "not a file") + end;
      d.reject.push("a `file` field that is not a file");
      break;
    case "nameless":
      pathQuery(undefined);
      body = part(boundary, "", "x") + end;
      d.reject.push("a part with no name and no `path`");
      break;
    case "unterminated":
      body = part(boundary, "fuzz/cut.txt", "cut").slice(0, -2);
      d.reject.push("a form that never ends");
      break;
  }
  d.mutation = `E2B multipart ${mutation}`;
  d.bodyText = body;
  d.headers = d.headers.filter(([k]) => k.toLowerCase() !== "content-type");
  d.headers.push(["Content-Type", `multipart/form-data; boundary=${boundary}`]);
}
