/**
 * The Python client refuses, in a port call's headers, exactly what Bay never sends on to
 * the sandbox's server (clients/python/bay_client/_transport.py keeps its own copy: it is
 * a standalone package). A header Bay starts dropping that the client still takes would be
 * lost without a word; one the client refuses that Bay sends on could not be set at all.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { PORT_HEADER_PREFIXES_NOT_SENT, PORT_HEADERS_NOT_SENT } from "../../src/bay/domain/sandbox-ports.ts";
import { HOP_BY_HOP } from "../../src/protocol/hop-by-hop.ts";

test("the Python client's refused port headers are Bay's not-sent and hop-by-hop headers", () => {
  const script =
    "import json, sys; sys.path.insert(0, sys.argv[1]); from bay_client import _transport as t; " +
    "print(json.dumps([sorted(t.PORT_HEADERS_NOT_SENT), list(t.PORT_HEADER_PREFIXES_NOT_SENT)]))";
  const run = Bun.spawnSync(["python3", "-c", script, join(import.meta.dir, "../../clients/python")], {
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
  });
  expect(run.stderr.toString()).toBe("");
  const [names, prefixes] = JSON.parse(run.stdout.toString()) as [string[], string[]];
  expect(names).toEqual([...new Set([...PORT_HEADERS_NOT_SENT, ...HOP_BY_HOP])].sort());
  expect([...prefixes].sort()).toEqual([...PORT_HEADER_PREFIXES_NOT_SENT].sort());
});
