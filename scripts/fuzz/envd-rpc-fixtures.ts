/**
 * What envd's Connect calls aim at, in the live E2B sandbox of alice's (e2b.ts):
 * a scratch directory for MakeDir, Move and Remove (`fuzz/rpc`); a running `cat`
 * with its stdin open (`{{epid.own}}`: Connect, SendInput, SendSignal, CloseStdin);
 * a terminal (`{{epty.own}}`: `/bin/bash` on a pty, which Update resizes);
 * a polling watcher (`{{ewatch.own}}`); and one in bob's sandbox (`{{ewatch.other}}`),
 * which alice's token must not reach. The keeper removes the watchers fuzzed calls
 * create (each holds one of alice's open-stream slots), and restarts the process
 * and the watcher when a call ended them.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { CreateWatcherResponseSchema } from "../../src/bay/e2b/generated/envd/filesystem/filesystem_pb.ts";
import { envelope, readConnectStream, splitEnvelopes } from "./connect-wire.ts";
import { E2B_BASE } from "./e2b.ts";
import { RPC_SCRATCH } from "./envd-rpc-messages.ts";
import type { FuzzRequest, Resolver } from "./request.ts";
import type { Outcome } from "./send.ts";

type Headers = Record<string, string>;
const own = (v: Record<string, string>): Headers => ({ "e2b-sandbox-id": v["esb.own"]!, "x-access-token": v["etok.own"]! });
const bob = (v: Record<string, string>): Headers => ({ "e2b-sandbox-id": v["esb.other"]!, "x-access-token": v["etok.other"]! });

/** A unary Connect call (JSON): its status and parsed body. */
async function unary(url: string, headers: Headers, method: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${E2B_BASE}/${method}`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // kept as text for the error
  }
  return { status: res.status, body: parsed };
}

async function ok(url: string, headers: Headers, method: string, body: unknown): Promise<any> {
  const r = await unary(url, headers, method, body);
  if (r.status !== 200) throw new Error(`fixture envd ${method}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  return r.body;
}

/** Starts `cat` with its stdin open and answers its pid (the stream is left after its start event; the process runs on). */
const startCat = (url: string, headers: Headers): Promise<string> => startProcess(url, headers, { process: { cmd: "cat" }, stdin: true });

/** Starts a terminal (bash on a pty, as the SDKs' `pty.create` does) and answers its pid. */
const startPty = (url: string, headers: Headers): Promise<string> =>
  startProcess(url, headers, { process: { cmd: "/bin/bash", args: ["-i", "-l"] }, pty: { size: { cols: 80, rows: 24 } } });

/** Starts a process and answers its pid (the stream is left after its start event; the process runs on). */
async function startProcess(url: string, headers: Headers, start: unknown): Promise<string> {
  const msg = new TextEncoder().encode(JSON.stringify(start));
  const res = await fetch(`${url}${E2B_BASE}/process.Process/Start`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/connect+json" },
    body: envelope(msg) as Uint8Array<ArrayBuffer>,
    signal: AbortSignal.timeout(120_000),
  });
  const { body } = await readConnectStream(res, { windowMs: 60_000, firstOnly: true });
  const first = splitEnvelopes(body).envelopes[0];
  const pid = first && first.flags === 0 ? JSON.parse(new TextDecoder().decode(first.data))?.event?.start?.pid : undefined;
  if (typeof pid !== "number")
    throw new Error(`fixture envd Start ${JSON.stringify(start)}: ${res.status} ${new TextDecoder().decode(body).slice(0, 300)}`);
  return String(pid);
}

const createWatcher = async (url: string, headers: Headers, path: string): Promise<string> =>
  (await ok(url, headers, "filesystem.Filesystem/CreateWatcher", { path, recursive: true })).watcherId;

/** Creates the envd fixtures into `v` (after the E2B ones). */
export async function createEnvdRpcFixtures(url: string, v: Record<string, string>): Promise<void> {
  const made = await unary(url, own(v), "filesystem.Filesystem/MakeDir", { path: RPC_SCRATCH });
  if (made.status !== 200 && made.status !== 409) throw new Error(`fixture envd MakeDir: ${made.status}`);
  v["epid.own"] = await startCat(url, own(v));
  v["epty.own"] = await startPty(url, own(v));
  v["ewatch.own"] = await createWatcher(url, own(v), RPC_SCRATCH);
  v["ewatch.other"] = await createWatcher(url, bob(v), "/home/user");
}

const headerOf = (req: FuzzRequest, name: string, resolve: Resolver): string | undefined => {
  const v = req.headers.find(([k]) => k.toLowerCase() === name)?.[1];
  try {
    return v === undefined ? undefined : resolve(v);
  } catch {
    return undefined;
  }
};

/** The watcher id of a CreateWatcher success, in either codec. */
function watcherIdOf(o: Outcome): string | undefined {
  const type = o.headers.find(([k]) => k === "content-type")?.[1] ?? "";
  try {
    if (type.startsWith("application/proto")) return fromBinary(CreateWatcherResponseSchema, o.body).watcherId;
    const id = JSON.parse(new TextDecoder().decode(o.body))?.watcherId;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Tracks what envd calls created or ended, and restores the envd fixtures between batches. */
export class EnvdRpcKeeper {
  private readonly watchers: Array<{ id: string; headers: Headers }> = [];
  private pidLost = false;
  private ptyLost = false;
  private watcherLost = false;

  constructor(private readonly values: Record<string, string>) {}

  note(req: FuzzRequest, resolve: Resolver, o: Outcome): void {
    if (o.kind !== "response" || o.status !== 200 || !req.connect?.kind) return;
    const path = req.connect.path;
    const body = typeof req.body === "string" ? req.body : "";
    if (path === "filesystem.Filesystem/CreateWatcher") {
      const id = watcherIdOf(o);
      const headers: Headers = {};
      for (const h of ["e2b-sandbox-id", "x-access-token"]) {
        const value = headerOf(req, h, resolve);
        if (value !== undefined) headers[h] = value;
      }
      if (id) this.watchers.push({ id, headers });
    }
    if (path === "filesystem.Filesystem/RemoveWatcher" && body.includes("{{ewatch.own}}")) this.watcherLost = true;
    if ((path === "process.Process/SendSignal" || path === "process.Process/CloseStdin") && body.includes("{{epid.own}}"))
      this.pidLost = true;
    if ((path === "process.Process/SendSignal" || path === "process.Process/CloseStdin") && body.includes("{{epty.own}}"))
      this.ptyLost = true;
  }

  async maintain(url: string): Promise<void> {
    for (const w of this.watchers.splice(0))
      await unary(url, w.headers, "filesystem.Filesystem/RemoveWatcher", { watcherId: w.id }).catch(() => {});
    const v = this.values;
    // A fake pid may have named the fixture's process, a watcher nobody polled ends: checked, not only noted.
    if (!this.pidLost || !this.ptyLost) {
      const list = await unary(url, own(v), "process.Process/List", {});
      const pids = ((list.body?.processes ?? []) as Array<{ pid?: number }>).map((p) => String(p.pid));
      if (list.status === 200 && !pids.includes(v["epid.own"]!)) this.pidLost = true;
      if (list.status === 200 && !pids.includes(v["epty.own"]!)) this.ptyLost = true;
    }
    if (this.pidLost) {
      v["epid.own"] = await startCat(url, own(v));
      this.pidLost = false;
    }
    if (this.ptyLost) {
      v["epty.own"] = await startPty(url, own(v));
      this.ptyLost = false;
    }
    if (!this.watcherLost) {
      const polled = await unary(url, own(v), "filesystem.Filesystem/GetWatcherEvents", { watcherId: v["ewatch.own"] });
      if (polled.status !== 200) this.watcherLost = true;
    }
    if (this.watcherLost) {
      await unary(url, own(v), "filesystem.Filesystem/RemoveWatcher", { watcherId: v["ewatch.own"] }).catch(() => {});
      await unary(url, own(v), "filesystem.Filesystem/MakeDir", { path: RPC_SCRATCH });
      v["ewatch.own"] = await createWatcher(url, own(v), RPC_SCRATCH);
      this.watcherLost = false;
    }
  }
}
