/**
 * Network isolation for sandbox containers: Bay-managed bridge networks whose
 * traffic is filtered by iptables rules Bay installs on the Docker host.
 *
 * * `egress` (the default profiles): the public internet only. Refused: the
 *   Docker host itself (Bay, databases, SSH, every published port), other
 *   sandboxes on the network, link-local/metadata (169.254/16), RFC 1918 ranges
 *   (10/8, 172.16/12, 192.168/16) and carrier-grade NAT (100.64/10). DNS to the
 *   upstream resolvers Docker forwards to is the one exception (see below).
 * * `none`: no egress at all. Docker's own `none` network would also cut Bay off
 *   from Ship, so Bay uses a managed network on which only Bay's connections to
 *   Ship (and their replies) pass.
 *
 * Rules live in two Bay chains, `BAY-EGRESS` (jumped to first from DOCKER-USER,
 * i.e. before Docker's own FORWARD rules) and `BAY-EGRESS-IN` (jumped to from
 * INPUT: traffic to the host). Every rule is keyed on a managed bridge interface,
 * so no other container is affected. Replies (conntrack ESTABLISHED,RELATED)
 * always pass: Bay reaches Ship through its 127.0.0.1 published port and Ship's
 * answers are replies. Installing is idempotent (one `iptables -S` listing, then
 * `iptables -C` before adding anything missing) and re-checked before every
 * container start, so rules lost to a firewall reload are put back. Allowing rules (RETURN) are inserted at the top of a chain and
 * refusing ones (REJECT) appended, so every allowance precedes every refusal even
 * in a chain an older Bay filled. Rules are never removed, so several Bays (or
 * versions) on one engine never undo each other's. This needs Bay on the Docker
 * host, as root, with `iptables`; when the rules cannot be installed the start
 * fails (`driver_unavailable`) instead of running the sandbox unrestricted.
 * Networks are created without IPv6.
 *
 * DNS. On a user-defined network a container's resolv.conf names Docker's
 * embedded resolver (127.0.0.11). Docker 20.10 forwards what that resolver does
 * not know itself to the upstream servers, dialling from the *container's*
 * network namespace unless the upstream is a loopback address (libnetwork
 * resolver: `ExecFunc(extConnect)` unless `HostLoopback`). So queries to a
 * resolver in a private range (here 10.255.255.53) leave with the sandbox's
 * address and would meet the 10/8 refusal. Bay therefore pins the container's
 * upstream servers (HostConfig.Dns) to the resolvers it allows, and allows
 * exactly udp/tcp 53 to those addresses, nothing else.
 */
import { readFileSync } from "node:fs";
import type Docker from "dockerode";
import { BayError } from "../../errors.ts";
import { DEFAULT_CALL_TIMEOUT_MS, engineStatus, raceDeadline, translateDockerError } from "./docker-errors.ts";

/** The two managed networks: public egress only, or none. */
export type EgressPolicy = "egress" | "none";

export interface ManagedNetwork {
  /** Docker network name. */
  network: string;
  /** Host bridge interface (<= 15 characters), what the rules match on. */
  bridge: string;
}

/**
 * Names kept from the first release of these networks (`egress` was then
 * `block_private_egress`), so engines that already have them keep one set.
 */
export const MANAGED_NETWORKS: Record<EgressPolicy, ManagedNetwork> = {
  egress: { network: "bay-egress-restricted", bridge: "bay-egress-p0" },
  none: { network: "bay-egress-none", bridge: "bay-egress-n0" },
};

/** Destinations an `egress` sandbox may not open connections to (besides the host and its own network). */
export const BLOCKED_RANGES = ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"];

export const FORWARD_CHAIN = "BAY-EGRESS";
export const INPUT_CHAIN = "BAY-EGRESS-IN";
const REJECT = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"];
const ESTABLISHED = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"];

/**
 * One rule: the chain, the match/target arguments, and where it belongs
 * (allowances on top, refusals at the end). Arguments are written in the order
 * `iptables -S` prints them, so one listing shows whether every rule is there.
 */
export interface Rule {
  chain: string;
  args: string[];
  at: "top" | "end";
}

/** What a container on a managed network needs: the network to join and its DNS upstreams. */
export interface PreparedNetwork {
  network: string;
  /** Upstream resolvers to pin in HostConfig.Dns; empty = leave Docker's choice. */
  dns: string[];
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const isLoopback = (ip: string) => ip.startsWith("127.");

/**
 * The rules for one policy; pure, so the rule set is reviewable and unit-tested.
 * @param resolvers upstream DNS servers (IPv4) the `egress` policy may reach on port 53
 */
export function egressRules(policy: EgressPolicy, resolvers: string[] = []): Rule[] {
  const dev = MANAGED_NETWORKS[policy].bridge;
  const rules: Rule[] = [];
  for (const chain of [FORWARD_CHAIN, INPUT_CHAIN]) {
    rules.push({ chain, args: ["-i", dev, ...ESTABLISHED], at: "top" });
    if (policy !== "egress") continue;
    // A loopback upstream is dialled from the host's namespace: no rule involved.
    for (const ip of resolvers.filter((r) => !isLoopback(r))) {
      for (const proto of ["udp", "tcp"]) {
        rules.push({ chain, args: ["-d", `${ip}/32`, "-i", dev, "-p", proto, "-m", proto, "--dport", "53", "-j", "RETURN"], at: "top" });
      }
    }
  }
  // Nothing from a sandbox to the Docker host itself (Bay, databases, SSH, published ports, …).
  rules.push({ chain: INPUT_CHAIN, args: ["-i", dev, ...REJECT], at: "end" });
  if (policy === "none") {
    rules.push({ chain: FORWARD_CHAIN, args: ["-i", dev, ...REJECT], at: "end" });
    return rules;
  }
  // Other sandboxes on the same bridge, whatever its subnet (ICC off only drops, and only in Docker's own chain).
  rules.push({ chain: FORWARD_CHAIN, args: ["-i", dev, "-o", dev, ...REJECT], at: "end" });
  for (const cidr of BLOCKED_RANGES) rules.push({ chain: FORWARD_CHAIN, args: ["-d", cidr, "-i", dev, ...REJECT], at: "end" });
  return rules;
}

/** Nameservers (IPv4) of a resolv.conf text, in order. */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && IPV4.test(m[1]!) && !out.includes(m[1]!)) out.push(m[1]!);
  }
  return out;
}

/** Reads a file, or null when it cannot be read. */
export type ReadText = (path: string) => string | null;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
};

/**
 * The upstream resolvers Docker gives containers on a user-defined network, found
 * the way dockerd 20.10 finds them: the daemon's `dns` setting, else the host's
 * resolv.conf, or systemd-resolved's upstream file when resolv.conf only names
 * its stub (127.0.0.53). IPv4 only (the managed networks have no IPv6). Empty
 * when none is configured (Docker then uses public resolvers, which egress reaches).
 */
export function hostResolvers(read: ReadText = readText): string[] {
  const daemon = read("/etc/docker/daemon.json");
  if (daemon) {
    try {
      const dns = (JSON.parse(daemon) as { dns?: unknown }).dns;
      if (Array.isArray(dns)) {
        const ips = dns.filter((d): d is string => typeof d === "string" && IPV4.test(d));
        if (ips.length) return ips;
      }
    } catch {
      // dockerd would refuse to start on a broken file; ours is only a hint.
    }
  }
  const host = parseResolvConf(read("/etc/resolv.conf") ?? "");
  if (host.length === 1 && host[0] === "127.0.0.53") {
    const upstream = parseResolvConf(read("/run/systemd/resolve/resolv.conf") ?? "");
    if (upstream.length) return upstream;
  }
  return host;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}
export type RunCommand = (argv: string[]) => Promise<CommandResult>;

const runBinary: RunCommand = async (argv) => {
  try {
    // iptables waits for the xtables lock; a stuck holder must not hang a start.
    const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", timeout: DEFAULT_CALL_TIMEOUT_MS, killSignal: "SIGKILL" });
    const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    return { code, stdout, stderr: stderr.trim() };
  } catch (e) {
    return { code: 127, stdout: "", stderr: (e as Error).message };
  }
};

/** The lines of `iptables -S` that a complete installation for these rules contains. */
function expectedLines(rules: Rule[]): string[] {
  return [
    `-N ${FORWARD_CHAIN}`,
    `-N ${INPUT_CHAIN}`,
    `-A DOCKER-USER -j ${FORWARD_CHAIN}`,
    `-A INPUT -j ${INPUT_CHAIN}`,
    ...rules.map((r) => `-A ${r.chain} ${r.args.join(" ")}`),
  ];
}

export interface EgressGuardOptions {
  /** False when the engine is remote (tcp://…): rules on this host would not apply there. */
  local: boolean;
  run?: RunCommand;
  /** iptables executable; default "iptables". */
  iptables?: string;
  /** Upstream DNS servers for `egress` sandboxes; default: the host's, as Docker finds them (read at every prepare). */
  resolvers?: () => string[];
}

/** Installs the managed networks and their rules; `prepare` returns what a container must join. */
export class EgressGuard {
  private readonly run: RunCommand;
  private readonly iptables: string;
  private readonly resolvers: () => string[];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly docker: Docker,
    private readonly opts: EgressGuardOptions,
  ) {
    this.run = opts.run ?? runBinary;
    this.iptables = opts.iptables ?? "iptables";
    this.resolvers = opts.resolvers ?? (() => hostResolvers());
  }

  /** Ensures network and rules for `policy` (serialised within this process). */
  prepare(policy: EgressPolicy): Promise<PreparedNetwork> {
    const next = this.queue.then(() => this.install(policy));
    this.queue = next.catch(() => {});
    return next;
  }

  private async install(policy: EgressPolicy): Promise<PreparedNetwork> {
    const managed = MANAGED_NETWORKS[policy];
    if (!this.opts.local) {
      throw failure(
        policy,
        "remote_engine",
        "the Docker engine is remote; isolation rules can only be installed when Bay runs on the Docker host",
      );
    }
    const dns = policy === "egress" ? this.resolvers() : [];
    await this.ensureNetwork(policy, managed);
    const rules = egressRules(policy, dns);
    // The usual case, every rule already there, costs one listing instead of a check per rule.
    const listing = await this.ipt(["-S"]);
    if (listing.code === 0) {
      const present = new Set(listing.stdout.split("\n").map((l) => l.trim()));
      if (expectedLines(rules).every((l) => present.has(l))) return { network: managed.network, dns };
    }
    await this.ensureChain(FORWARD_CHAIN, "DOCKER-USER", policy);
    await this.ensureChain(INPUT_CHAIN, "INPUT", policy);
    for (const rule of rules) {
      const check = await this.ipt(["-C", rule.chain, ...rule.args]);
      if (check.code === 0) continue;
      const add = await this.ipt(rule.at === "top" ? ["-I", rule.chain, "1", ...rule.args] : ["-A", rule.chain, ...rule.args]);
      if (add.code !== 0) throw firewallFailure(policy, { chain: rule.chain, rule: rule.args.join(" "), stderr: add.stderr });
    }
    return { network: managed.network, dns };
  }

  private ipt(args: string[]): Promise<CommandResult> {
    return this.run([this.iptables, "-w", "5", ...args]);
  }

  /** Creates `chain` if missing and makes `parent` jump to it first. */
  private async ensureChain(chain: string, parent: string, policy: EgressPolicy): Promise<void> {
    const list = await this.ipt(["-S", chain]);
    if (list.code !== 0) {
      const created = await this.ipt(["-N", chain]);
      if (created.code !== 0 && !/exists/i.test(created.stderr)) {
        throw firewallFailure(policy, { chain, stderr: created.stderr });
      }
    }
    if ((await this.ipt(["-C", parent, "-j", chain])).code === 0) return;
    const jump = await this.ipt(["-I", parent, "1", "-j", chain]);
    if (jump.code !== 0) throw firewallFailure(policy, { chain: parent, rule: `-j ${chain}`, stderr: jump.stderr });
  }

  private async ensureNetwork(policy: EgressPolicy, managed: ManagedNetwork): Promise<void> {
    try {
      // dockerode drops the abort signal of a network inspect: the deadline races it instead.
      const info = await raceDeadline(this.docker.getNetwork(managed.network).inspect(), AbortSignal.timeout(DEFAULT_CALL_TIMEOUT_MS));
      const bridge = info.Options?.["com.docker.network.bridge.name"];
      if (bridge !== managed.bridge) {
        throw failure(policy, "foreign_network", `a network named ${managed.network} exists but was not created by Bay; remove it`, {
          bridge: bridge ?? null,
        });
      }
      if (info.Options?.["com.docker.network.bridge.enable_icc"] !== "false") {
        throw failure(
          policy,
          "foreign_network",
          `Bay's network ${managed.network} lets containers reach each other; remove it so Bay re-creates it`,
          { enable_icc: info.Options?.["com.docker.network.bridge.enable_icc"] ?? null },
        );
      }
      return;
    } catch (e) {
      if (e instanceof BayError) throw e;
      if (engineStatus(e) !== 404) throw translateDockerError(e, `inspect network ${managed.network}`, DEFAULT_CALL_TIMEOUT_MS);
    }
    try {
      await this.docker.createNetwork({
        abortSignal: AbortSignal.timeout(DEFAULT_CALL_TIMEOUT_MS),
        Name: managed.network,
        Driver: "bridge",
        CheckDuplicate: true,
        EnableIPv6: false,
        // Labelled with the policy's first-release name, which other Bays on this engine may read.
        Labels: { "bay.managed": "egress", "bay.egress_policy": policy === "egress" ? "private" : "all" },
        Options: {
          "com.docker.network.bridge.name": managed.bridge,
          // Sandboxes on the network cannot talk to each other.
          "com.docker.network.bridge.enable_icc": "false",
        },
      });
    } catch (e) {
      // Another Bay created it in the meantime.
      if (engineStatus(e) === 409) return;
      throw translateDockerError(e, `create network ${managed.network}`, DEFAULT_CALL_TIMEOUT_MS);
    }
  }
}

/** Why isolation could not be installed, as clients see it (`details.reason`). */
export type IsolationFailure = "remote_engine" | "firewall" | "foreign_network";

/** A start that fails closed: the message says what the operator must change; raw command output goes to the log only. */
function failure(policy: EgressPolicy, reason: IsolationFailure, why: string, internal: Record<string, unknown> = {}): BayError {
  return new BayError("driver_unavailable", `cannot isolate the sandbox's network (${policy}): ${why}`, {
    details: { network_policy: policy, reason },
    internal,
  });
}

function firewallFailure(policy: EgressPolicy, internal: Record<string, unknown>): BayError {
  return failure(
    policy,
    "firewall",
    "installing its firewall rules failed; Bay must run as root on the Docker host, with iptables",
    internal,
  );
}
