/**
 * Watch descriptors by their directories' paths, as a tree of path segments, so that
 * what lies under a directory is found by walking down to it: a directory's move or
 * its move out touches the watches below it, not every watch (a rename storm over
 * 8,000 watched directories took seconds per poll when each move scanned them all,
 * and a sorted array still moved every entry after the changed one). A path may hold
 * more than one descriptor (a stale path, until the events that say where it went are
 * read), and a directory with nobody's watch may lie between watched ones (watches
 * with roots of their own).
 */
interface Node {
  readonly name: string;
  readonly parent: Node | null;
  readonly children: Map<string, Node>;
  wds: Set<number> | null;
}

const node = (name: string, parent: Node | null): Node => ({ name, parent, children: new Map(), wds: null });
const segments = (path: string): string[] => path.split("/").filter((s) => s !== "");
const childPath = (dir: string, name: string): string => (dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`);

export class PathIndex {
  private readonly root = node("", null);
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(path: string, wd: number): void {
    let at = this.root;
    for (const name of segments(path)) {
      let next = at.children.get(name);
      if (!next) {
        next = node(name, at);
        at.children.set(name, next);
      }
      at = next;
    }
    at.wds ??= new Set();
    if (at.wds.has(wd)) return;
    at.wds.add(wd);
    this.count++;
  }

  delete(path: string, wd: number): void {
    let at: Node | null | undefined = this.find(path);
    if (!at?.wds?.delete(wd)) return;
    this.count--;
    // Nodes that hold nothing any more go, up to the first that still does.
    while (at?.parent && at.children.size === 0 && !at.wds?.size) {
      at.parent.children.delete(at.name);
      at = at.parent;
    }
  }

  /** Each descriptor at `dir` or below it (`dir/…`), with its path. */
  under(dir: string): Array<[number, string]> {
    const top = this.find(dir);
    const out: Array<[number, string]> = [];
    if (!top) return out;
    const stack: Array<[Node, string]> = [[top, dir]];
    for (let item = stack.pop(); item; item = stack.pop()) {
      const [n, path] = item;
      for (const wd of n.wds ?? []) out.push([wd, path]);
      for (const [name, child] of n.children) stack.push([child, childPath(path, name)]);
    }
    return out;
  }

  clear(): void {
    this.root.children.clear();
    this.root.wds = null;
    this.count = 0;
  }

  private find(path: string): Node | undefined {
    let at: Node | undefined = this.root;
    for (const name of segments(path)) {
      at = at.children.get(name);
      if (!at) return undefined;
    }
    return at;
  }
}
