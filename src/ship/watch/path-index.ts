/**
 * Where each watch descriptor's directory is, as a tree of path segments. A watch
 * holds its node, and a node's path is worked out from its parents when asked (and
 * kept until the next move), so a directory's move re-hangs one node whatever is below
 * it: a rename storm over a directory with thousands of watched directories below it
 * costs each rename the same as any other (it cost each of them a pass over those, or
 * over every watch). A take (a move out) walks what it takes: each of those watches is
 * removed anyway. A path may hold more than one descriptor (a stale path, until the
 * events that say where it went are read), and a directory with nobody's watch may lie
 * between watched ones (watches with roots of their own).
 */
export interface PathNode {
  name: string;
  parent: PathNode | null;
  readonly children: Map<string, PathNode>;
  wds: Set<number> | null;
  /** The path, as of move number `gen`. */
  path: string;
  gen: number;
}

const segments = (path: string): string[] => path.split("/").filter((s) => s !== "");
const childPath = (dir: string, name: string): string => (dir === "/" ? `/${name}` : `${dir}/${name}`);

export class PathIndex {
  private gen = 0;
  private readonly root: PathNode = { name: "", parent: null, children: new Map(), wds: null, path: "/", gen: 0 };
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** `wd` at `path`; its node. */
  add(path: string, wd: number): PathNode {
    const at = this.make(path);
    at.wds ??= new Set();
    if (!at.wds.has(wd)) {
      at.wds.add(wd);
      this.count++;
    }
    return at;
  }

  /** `wd` no longer at `at`. */
  delete(at: PathNode, wd: number): void {
    if (!at.wds?.delete(wd)) return;
    this.count--;
    this.prune(at);
  }

  /** Whether some descriptor is at `path`. */
  has(path: string): boolean {
    return (this.find(path)?.wds?.size ?? 0) > 0;
  }

  /** A node's current path (one taken out: nothing anyone should ask for). */
  pathOf(at: PathNode): string {
    if (at === this.root || at.gen === this.gen || !at.parent) return at.path;
    at.path = childPath(this.pathOf(at.parent), at.name);
    at.gen = this.gen;
    return at.path;
  }

  /**
   * Each descriptor at `dir` or below it (`dir/…`), with its path: the index as a list,
   * what the hub's checks of it (tests) compare with a walk of the real tree. The hub
   * itself only moves (move), takes out (take) and asks (has, pathOf).
   */
  under(dir: string): Array<[number, string]> {
    const top = this.find(dir);
    const out: Array<[number, string]> = [];
    if (!top) return out;
    const stack: PathNode[] = [top];
    for (let n = stack.pop(); n; n = stack.pop()) {
      for (const wd of n.wds ?? []) out.push([wd, this.pathOf(n)]);
      stack.push(...n.children.values());
    }
    return out;
  }

  /**
   * What is at `from` and below now hangs at `to` (made as needed). Whatever held `to`
   * before keeps its descriptors there, beside the moved ones (a stale path until its
   * own events come): the nodes of those moved ones then are the ones already there,
   * returned as [descriptor, its node now]; nothing else changes node.
   */
  move(from: string, to: string): Array<[number, PathNode]> {
    const top = this.find(from);
    const names = segments(to);
    const last = names.pop();
    if (!top?.parent || last === undefined || from === to || to.startsWith(`${from}/`)) return [];
    top.parent.children.delete(top.name);
    this.prune(top.parent);
    this.gen++;
    const parent = this.make(names.join("/"));
    const there = parent.children.get(last);
    if (there) return this.merge(there, top);
    top.name = last;
    top.parent = parent;
    parent.children.set(last, top);
    return [];
  }

  /** Takes `dir` and what is below it out; returns each descriptor taken. */
  take(dir: string): number[] {
    const top = this.find(dir);
    if (!top?.parent) return [];
    const taken: number[] = [];
    const stack: PathNode[] = [top];
    for (let n = stack.pop(); n; n = stack.pop()) {
      for (const wd of n.wds ?? []) taken.push(wd);
      stack.push(...n.children.values());
    }
    top.parent.children.delete(top.name);
    this.prune(top.parent);
    top.parent = null;
    this.count -= taken.length;
    return taken;
  }

  clear(): void {
    this.root.children.clear();
    this.root.wds = null;
    this.count = 0;
    this.gen++;
  }

  /** `from`'s descriptors and children join `into` (a path both now name); the descriptors re-homed, with their nodes. */
  private merge(into: PathNode, from: PathNode): Array<[number, PathNode]> {
    const moved: Array<[number, PathNode]> = [];
    for (const wd of from.wds ?? []) {
      (into.wds ??= new Set()).add(wd);
      moved.push([wd, into]);
    }
    for (const [name, child] of from.children) {
      const there = into.children.get(name);
      if (there) moved.push(...this.merge(there, child));
      else {
        child.parent = into;
        into.children.set(name, child);
      }
    }
    // Gone into `into`: nothing may find its way through it any more.
    from.wds = null;
    from.parent = null;
    from.children.clear();
    return moved;
  }

  private make(path: string): PathNode {
    let at = this.root;
    for (const name of segments(path)) {
      let next = at.children.get(name);
      if (!next) {
        next = { name, parent: at, children: new Map(), wds: null, path: childPath(this.pathOf(at), name), gen: this.gen };
        at.children.set(name, next);
      }
      at = next;
    }
    return at;
  }

  /** Nodes that hold nothing any more go, up to the first that still does. */
  private prune(from: PathNode): void {
    let at: PathNode | null = from;
    while (at?.parent && at.children.size === 0 && !at.wds?.size) {
      at.parent.children.delete(at.name);
      at = at.parent;
    }
  }

  private find(path: string): PathNode | undefined {
    let at: PathNode | undefined = this.root;
    for (const name of segments(path)) {
      at = at.children.get(name);
      if (!at) return undefined;
    }
    return at;
  }
}
