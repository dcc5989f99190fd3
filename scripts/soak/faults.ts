/**
 * The faults the soak injects, one function each. Every fault reports whether
 * it really happened (a kill needs a running container, a reclaim needs the
 * reaper to act) and anything surprising about Bay's answers during it.
 */
import { connect } from "node:net";
import { containersOf, hitContainer, processCount, runningContainer, waitNewContainer, waitNoContainer } from "./containers.ts";
import { e2bPath, sandboxIdOf, UPLOAD_ORDERS } from "./client.ts";
import { ABSENT } from "./ledger.ts";
import type { SoakSandbox, SoakWorld } from "./world.ts";

export const FAULT_KINDS = [
  "container-kill",
  "container-stop",
  "bay-kill",
  "bay-kill-mid-upload",
  "bay-kill-mid-start",
  "oom",
  "fork-bomb",
  "full-tmp",
  "idle-reclaim",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRecord {
  kind: FaultKind;
  target: string;
  /** False when the fault could not be applied (nothing to kill, no reclaim). */
  effective: boolean;
  note?: string;
  /** A cut upload whose partial bytes became visible at its path. */
  torn?: { path: string; size: number };
}

/** Makes sure the sandbox has a running Ship (a trivial exec starts one). */
async function ensureRunning(w: SoakWorld, sb: SoakSandbox): Promise<string | null> {
  await w.client.retrying(() => w.client.json("POST", `${sb.route}/python/exec`, { code: "1" }));
  return runningContainer(w.bay.instanceId, sb.id);
}

async function restartBay(w: SoakWorld): Promise<void> {
  await w.bay.stop("SIGKILL");
  await w.bay.start();
}

const pickTarget = (w: SoakWorld) => w.rng.pick(w.sandboxes.filter((s) => s.name !== "C"));

export async function inject(kind: FaultKind, w: SoakWorld, round: number): Promise<FaultRecord> {
  switch (kind) {
    case "container-kill":
    case "container-stop": {
      const sb = pickTarget(w);
      const id = await ensureRunning(w, sb);
      if (id) await hitContainer(id, kind === "container-kill" ? "kill" : "stop");
      return { kind, target: sb.name, effective: id !== null };
    }
    case "bay-kill":
      await restartBay(w);
      return { kind, target: "bay", effective: true };
    case "bay-kill-mid-upload":
      return killMidUpload(w, round);
    case "bay-kill-mid-start": {
      const sb = pickTarget(w);
      await w.client.retrying(() => w.client.json("POST", `${sb.route}/stop`));
      const before = new Set(await containersOf(w.bay.instanceId, sb.id));
      const pending = w.client.json("POST", `${sb.route}/python/exec`, { code: "1" }).catch(() => null);
      // Half the time the kill lands right after the container is created, before Ship answers.
      if (w.rng.chance(0.5)) await waitNewContainer(w.bay.instanceId, sb.id, before, 15_000);
      else await Bun.sleep(w.rng.int(50, 1500));
      const created = (await containersOf(w.bay.instanceId, sb.id)).some((id) => !before.has(id));
      await restartBay(w);
      await pending;
      return {
        kind,
        target: sb.name,
        effective: true,
        note: created ? "killed after the container was created" : "killed before the container was created",
      };
    }
    case "oom": {
      const sb = pickTarget(w);
      await ensureRunning(w, sb);
      const mb = w.memoryMb * 2;
      const r = await w.client.json("POST", `${sb.route}/python/exec`, { code: `x = b"o" * (${mb} * 1024 * 1024)\nlen(x)`, timeout: 60 });
      const after = await w.client.retrying(() => w.client.json("POST", `${sb.route}/python/exec`, { code: "21 * 2" }));
      const hit = r.status === 200 && (r.body?.kernel_restarted === true || r.body?.success === false);
      return {
        kind,
        target: sb.name,
        effective: hit,
        note: `allocation answered ${r.status} ${JSON.stringify(r.body).slice(0, 160)}; next exec ${after.status}${after.body?.output?.includes("42") ? " ok" : ` ${JSON.stringify(after.body).slice(0, 120)}`}`,
      };
    }
    case "fork-bomb": {
      const sb = pickTarget(w);
      await ensureRunning(w, sb);
      const r = await w.client.json("POST", `${sb.route}/shell/exec`, { command: "bash -c ':(){ :|:& };:'", timeout: 5 }, 120_000);
      const after = await w.client.retrying(() => w.client.json("POST", `${sb.route}/shell/exec`, { command: "echo alive" }));
      // What the bomb left running once its call has ended (Ship, the kernel and a shell are a handful).
      await Bun.sleep(2000);
      const container = await runningContainer(w.bay.instanceId, sb.id);
      const left = container ? await processCount(container) : -1;
      return {
        kind,
        target: sb.name,
        effective: true,
        note: `bomb answered ${r.status}; next exec ${after.status} ${String(after.body?.output ?? "").trim()}; ${left} processes in the container 2 s later`,
      };
    }
    case "full-tmp": {
      const sb = pickTarget(w);
      const r = await w.client.retrying(() =>
        w.client.json("POST", `${sb.route}/shell/exec`, {
          command: `head -c ${w.tmpfsMb + 8}M /dev/zero > /tmp/soak-fill; df -k /tmp | tail -1`,
        }),
      );
      const full = /No space left/i.test(String(r.body?.error ?? ""));
      return {
        kind,
        target: sb.name,
        effective: full,
        note: full ? undefined : `fill answered ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`,
      };
    }
    case "idle-reclaim": {
      const c = w.sandboxes.find((s) => s.name === "C")!;
      await ensureRunning(w, c);
      const gone = await waitNoContainer(w.bay.instanceId, c.id, 30_000);
      return { kind, target: "C", effective: gone, ...(gone ? {} : { note: "still running 30 s after its 2 s idle timeout" }) };
    }
  }
}

/** Clears what full-tmp left, so the next rounds start from a usable /tmp. */
export async function clearTmp(w: SoakWorld, sb: SoakSandbox): Promise<void> {
  await w.client.retrying(() => w.client.json("POST", `${sb.route}/shell/exec`, { command: "rm -f /tmp/soak-fill" }));
}

/**
 * Streams a 24 MiB upload to a fresh path and kills Bay with SIGKILL after
 * about 3 MiB, then restarts it. The path must stay absent: a cut upload
 * must never leave its partial bytes where a complete file is expected.
 */
async function killMidUpload(w: SoakWorld, round: number): Promise<FaultRecord> {
  const sb = w.rng.pick(w.sandboxes);
  const viaWorkspace = w.rng.chance(0.5);
  const route = viaWorkspace ? sb.volume.workspaceRoute : sb.volume.sandboxRoute;
  const picked = w.rng.pick(UPLOAD_ORDERS);
  // E2B's write exists for sandboxes only: on a workspace route it is a raw upload.
  const order = picked === "e2b" && viaWorkspace ? "raw" : picked;
  const path = `soak/cut-${round}.bin`;
  const boundary = `soak${w.rng.uint32().toString(36)}`;
  const total = 24 * 1024 * 1024;
  const pathPart = `--${boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n${path}\r\n`;
  const filename = order === "e2b" ? e2bPath(path) : "cut.bin";
  const fileHead = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  // A raw upload's body is the file alone, its path in the query; E2B's form is the file part alone.
  const tail = order === "raw" ? "" : `\r\n${order === "file-first" ? pathPart : ""}--${boundary}--\r\n`;
  const head = order === "raw" ? "" : order === "path-first" ? pathPart + fileHead : fileHead;
  const envd = order === "e2b" ? await w.client.envdHeaders(sandboxIdOf(route)!) : {};
  const length = Buffer.byteLength(head) + total + Buffer.byteLength(tail);
  const port = Number(new URL(w.bay.url).port);
  const socket = connect({ host: "127.0.0.1", port });
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const envdLines = Object.entries(envd)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  socket.write(
    order === "raw"
      ? `POST ${route}/filesystem/upload?path=${encodeURIComponent(path)} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Owner: soak\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`
      : order === "e2b"
        ? `POST /e2b/files HTTP/1.1\r\nHost: 127.0.0.1\r\n${envdLines}Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${length}\r\n\r\n${head}`
        : `POST ${route}/filesystem/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Owner: soak\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${length}\r\n\r\n${head}`,
  );
  const chunk = w.rng.bytes(256 * 1024);
  const cutAfter = w.rng.int(4, 16);
  for (let i = 0; i < cutAfter; i++) {
    if (!socket.write(chunk)) await new Promise((r) => socket.once("drain", r));
    await Bun.sleep(10);
  }
  await restartBay(w);
  socket.destroy();
  const check = await w.client.download(sb.volume.workspaceRoute, path);
  const torn = check.bytes ? { path, size: check.bytes.byteLength } : undefined;
  return {
    kind: "bay-kill-mid-upload",
    target: `${sb.name} via ${viaWorkspace ? "workspace" : "sandbox"} route, ${order}`,
    effective: true,
    note: `cut after ${cutAfter * 256} KiB; path ${check.status === 404 ? ABSENT : `answered ${check.status}`}`,
    ...(torn ? { torn } : {}),
  };
}
