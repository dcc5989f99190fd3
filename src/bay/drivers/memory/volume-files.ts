/**
 * VolumeFiles in memory: a small real filesystem per volume (directories, files,
 * symlinks, special entries), for an in-memory driver's fast tests. It answers
 * exactly as the Docker implementation does; tests/contract runs one suite on both.
 * Symlinks and special entries only arrive the way user code would make them
 * (`plantSymlink`, `plantSpecial`): the data plane itself never creates one.
 */
import { BayError } from "../../errors.ts";
import type { DirectoryListing, FileBody, FileStat, OpenedFile, RemoveOptions, VolumeFiles, VolumeLabels, VolumeRef } from "../driver.ts";
import { fileErrors, segmentsOf, walkChain, type Walked } from "../volume-walk.ts";

interface Node {
  mtime: number;
}
interface FileNode extends Node {
  kind: "file";
  bytes: Uint8Array;
}
interface DirNode extends Node {
  kind: "directory";
  children: Map<string, Entry>;
}
interface LinkNode extends Node {
  kind: "symlink";
  target: string;
}
interface OtherNode extends Node {
  kind: "other";
}
type Entry = FileNode | DirNode | LinkNode | OtherNode;

interface Volume {
  /** Null for a volume the engine made itself (a container mounting a missing one): it carries no labels. */
  labels: VolumeLabels | null;
  root: DirNode;
}

/** Chunks a read is streamed in, as a real transfer would be. */
const CHUNK = 64 * 1024;

const sizeOf = (e: Entry): number =>
  e.kind === "file" ? e.bytes.byteLength : e.kind === "symlink" ? Buffer.byteLength(e.target, "utf8") : 0;
const statOf = (name: string, e: Entry): FileStat => ({ name, kind: e.kind, size: sizeOf(e), modifiedAt: e.mtime });
const lastSegment = (path: string) => path.slice(path.lastIndexOf("/") + 1);

export class MemoryVolumeFiles implements VolumeFiles {
  private readonly volumes = new Map<string, Volume>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The volumes that exist, with the labels they were created with. */
  existingVolumes(): Array<{ name: string; labels: VolumeLabels | null }> {
    return [...this.volumes].map(([name, v]) => ({ name, labels: v.labels }));
  }

  /** Creates a volume (a no-op for an existing one), as a driver's createVolume does; null labels: an unlabelled one. */
  createVolume(name: string, labels: VolumeLabels | null): void {
    if (!this.volumes.has(name)) this.volumes.set(name, { labels, root: { kind: "directory", children: new Map(), mtime: this.now() } });
  }

  /** Drops a volume and everything in it; false when there was none. */
  dropVolume(name: string): boolean {
    return this.volumes.delete(name);
  }

  /** Makes a symlink at `path` pointing to `target`, as `ln -s` in user code would; parents must exist. */
  plantSymlink(volume: string, path: string, target: string): void {
    this.plant(volume, path, { kind: "symlink", target, mtime: this.now() });
  }

  /** Makes a special entry (a FIFO, a socket) at `path`; parents must exist. */
  plantSpecial(volume: string, path: string): void {
    this.plant(volume, path, { kind: "other", mtime: this.now() });
  }

  async stat(volume: VolumeRef, path: string): Promise<FileStat | null> {
    const root = this.rootOf(volume);
    if (path === ".") return statOf(".", root);
    return this.walk(root, path, "allow").target;
  }

  async read(volume: VolumeRef, path: string): Promise<OpenedFile> {
    const root = this.rootOf(volume);
    if (path === ".") throw fileErrors.isDirectory(path);
    const node = this.find(root, path);
    if (!node) throw fileErrors.notFound(path);
    if (node.kind === "directory") throw fileErrors.isDirectory(path);
    if (node.kind !== "file") throw fileErrors.notRegularFile(path);
    const bytes = node.bytes;
    let offset = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (offset >= bytes.byteLength) return ctrl.close();
        ctrl.enqueue(bytes.slice(offset, offset + CHUNK));
        offset += CHUNK;
      },
    });
    return { stat: statOf(lastSegment(path), node), body };
  }

  async write(volume: VolumeRef, path: string, body: FileBody): Promise<void> {
    const root = this.rootOf(volume);
    if (path === ".") throw fileErrors.root(path);
    const before = this.walk(root, path);
    refuseOverwrite(path, before.target);
    const bytes = await collect(body);
    // Walked again: the body may have taken a while, and the tree is what it is now.
    const { target, missingDirs } = this.walk(root, path);
    refuseOverwrite(path, target);
    const now = this.now();
    for (const dir of missingDirs)
      this.parentOf(root, dir).children.set(lastSegment(dir), { kind: "directory", children: new Map(), mtime: now });
    const parent = this.parentOf(root, path);
    parent.children.set(lastSegment(path), { kind: "file", bytes, mtime: now });
    parent.mtime = now;
  }

  async list(volume: VolumeRef, path: string, opts: { maxEntries: number; timeoutMs: number }): Promise<DirectoryListing> {
    const root = this.rootOf(volume);
    const node = path === "." ? root : this.find(root, path);
    if (!node) throw fileErrors.notFound(path);
    if (node.kind !== "directory") throw fileErrors.notDirectory(path);
    const all = [...node.children];
    const entries = all
      .slice(0, opts.maxEntries)
      .map(([name, e]) => statOf(name, e))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { entries, truncated: all.length > opts.maxEntries };
  }

  async remove(volume: VolumeRef, path: string, opts: RemoveOptions = {}): Promise<void> {
    const root = this.rootOf(volume);
    if (path === ".") throw fileErrors.root(path);
    const { target } = this.walk(root, path, "allow");
    if (!target) throw fileErrors.notFound(path);
    if (opts.directory && target.kind !== "directory") throw fileErrors.notADirectory(path);
    const parent = this.parentOf(root, path);
    parent.children.delete(lastSegment(path));
    parent.mtime = this.now();
  }

  async usage(volume: VolumeRef): Promise<number> {
    const total = (e: Entry): number => (e.kind === "directory" ? [...e.children.values()].reduce((n, c) => n + total(c), 0) : sizeOf(e));
    return total(this.rootOf(volume));
  }

  /** The root of a volume, created with its labels on first use (as a Docker mount would). */
  private rootOf(volume: VolumeRef): DirNode {
    this.createVolume(volume.name, volume.labels);
    return this.volumes.get(volume.name)!.root;
  }

  /** The lstat chain of `path` checked by the shared walking rule. */
  private walk(root: DirNode, path: string, finalLink: "refuse" | "allow" = "refuse"): Walked {
    const chain: Array<FileStat | null> = [];
    let dir: Entry = root;
    for (const segment of segmentsOf(path)) {
      // Below a non-directory there is nothing to look up: walkChain refuses the chain at that parent.
      const child: Entry | undefined = dir.kind === "directory" ? dir.children.get(segment) : undefined;
      chain.push(child ? statOf(segment, child) : null);
      if (!child) break;
      dir = child;
    }
    return walkChain(path, chain, finalLink);
  }

  /** The entry at `path` after the walking rule (a final symlink refused); null when missing. */
  private find(root: DirNode, path: string): Entry | null {
    if (!this.walk(root, path).target) return null;
    let node: Entry = root;
    for (const segment of segmentsOf(path)) node = (node as DirNode).children.get(segment)!;
    return node;
  }

  /** The directory holding `path` (its parents must exist and be directories). */
  private parentOf(root: DirNode, path: string): DirNode {
    const segments = segmentsOf(path);
    let dir = root;
    for (const segment of segments.slice(0, -1)) {
      const next = dir.children.get(segment);
      if (next?.kind !== "directory") throw new BayError("internal_error", `in-memory volume: ${segment} is not a directory`);
      dir = next;
    }
    return dir;
  }

  private plant(volume: string, path: string, entry: Entry): void {
    const v = this.volumes.get(volume);
    if (!v) throw new BayError("not_found", `in-memory volume not found: ${volume}`);
    this.parentOf(v.root, path).children.set(lastSegment(path), entry);
  }
}

/** A write may replace a file, never a directory or a special entry. */
function refuseOverwrite(path: string, target: FileStat | null): void {
  if (target?.kind === "directory") throw fileErrors.isDirectory(path);
  if (target && target.kind !== "file") throw fileErrors.notRegularFile(path);
}

/** Every byte of a body, which must be exactly its stated size. */
async function collect(body: FileBody): Promise<Uint8Array> {
  if (body.bytes instanceof Uint8Array) {
    if (body.bytes.byteLength !== body.size) throw sizeMismatch(body.bytes.byteLength, body.size);
    return body.bytes.slice();
  }
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of body.bytes) {
    n += chunk.byteLength;
    if (n > body.size) throw sizeMismatch(n, body.size);
    chunks.push(chunk);
  }
  if (n !== body.size) throw sizeMismatch(n, body.size);
  return Buffer.concat(chunks);
}

const sizeMismatch = (got: number, want: number) =>
  new BayError("internal_error", `file body changed size while streaming (${got} != ${want})`);
