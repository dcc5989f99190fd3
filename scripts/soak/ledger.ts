/**
 * What the soak wrote and expects to read back: per volume and path, the
 * SHA-256 of every version that may legitimately be there (one after a write
 * that succeeded; the old and the new one — or none — after a write a fault
 * cut short). Verification downloads every file and compares every byte.
 */
import { type SoakClient, sha256 } from "./client.ts";

export const ABSENT = "absent";

/** A volume and the routes that reach it (a sandbox's, and the workspace's own data plane). */
export interface Volume {
  name: string;
  workspaceRoute: string;
  sandboxRoute: string;
}

interface Entry {
  volume: Volume;
  path: string;
  accept: Set<string>;
  size: number;
}

export interface VerifyResult {
  files: number;
  /** Bytes downloaded and compared with their SHA-256. */
  bytes: number;
  lost: Array<{ volume: string; path: string; route: string; expected: string[]; got: string }>;
  bytesLost: number;
  unreadable: Array<{ volume: string; path: string; route: string; status: number }>;
}

export class Ledger {
  private readonly entries = new Map<string, Entry>();
  bytesWritten = 0;
  writes = 0;

  private key = (v: Volume, path: string) => `${v.name}:${path}`;

  /** Records a write: `ok` false when its outcome is unknown (the old version may still be there). */
  wrote(volume: Volume, path: string, data: Uint8Array, ok: boolean): void {
    const hash = sha256(data);
    const k = this.key(volume, path);
    const old = this.entries.get(k);
    if (ok) {
      this.entries.set(k, { volume, path, accept: new Set([hash]), size: data.byteLength });
      this.bytesWritten += data.byteLength;
      this.writes++;
      return;
    }
    const accept = new Set(old?.accept ?? [ABSENT]);
    accept.add(hash);
    this.entries.set(k, { volume, path, accept, size: Math.max(old?.size ?? 0, data.byteLength) });
  }

  get size(): number {
    return this.entries.size;
  }

  /** Downloads every recorded file (through `pickRoute`'s choice of route) and compares it. */
  async verify(client: SoakClient, pickRoute: (v: Volume) => string): Promise<VerifyResult> {
    const result: VerifyResult = { files: 0, bytes: 0, lost: [], bytesLost: 0, unreadable: [] };
    for (const e of this.entries.values()) {
      const route = pickRoute(e.volume);
      const r = await client.download(route, e.path);
      if (r.status !== 200 && r.status !== 404) {
        result.unreadable.push({ volume: e.volume.name, path: e.path, route, status: r.status });
        continue;
      }
      result.files++;
      result.bytes += r.bytes?.byteLength ?? 0;
      const got = r.bytes ? sha256(r.bytes) : ABSENT;
      if (!e.accept.has(got)) {
        result.lost.push({ volume: e.volume.name, path: e.path, route, expected: [...e.accept], got });
        result.bytesLost += e.size;
        // Counted once: what is there now is what later checks compare against.
        e.accept = new Set([got]);
      } else if (e.accept.size > 1) {
        // The uncertain write settled one way; from now on only that version is right.
        e.accept = new Set([got]);
      }
    }
    return result;
  }
}
