/**
 * Egress control for sandbox containers: Bay-managed bridge networks whose
 * traffic is filtered by iptables rules Bay installs on the Docker host.
 *
 * * `private` (profile `block_private_egress: true`): the sandbox may reach the
 *   public internet but not link-local/metadata (169.254/16), RFC 1918 ranges
 *   (10/8, 172.16/12, 192.168/16), carrier-grade NAT (100.64/10), other sandboxes
 *   or the Docker host itself.
 * * `all` (profile `network: none`): no egress at all. Docker's own `none`
 *   network would also cut Bay off from the Ship, so Bay uses a managed network
 *   on which only Bay's connections to the Ship (and their replies) pass.
 *
 * Rules live in two Bay chains, `BAY-EGRESS` (jumped to first from DOCKER-USER,
 * i.e. before Docker's own FORWARD rules) and `BAY-EGRESS-IN` (jumped to from
 * INPUT, traffic to the host). Both are keyed on the managed bridge interface, so
 * no other container is affected. Replies (conntrack ESTABLISHED,RELATED) always
 * pass: Bay reaches the Ship through its 127.0.0.1 published port and the Ship's
 * answers are replies. Installing is idempotent (`iptables -C` before `-A`) and
 * re-checked before every container start, so rules lost to a firewall reload are
 * put back. This needs Bay on the Docker host, as root, with `iptables`; when it
 * cannot install the rules the start fails (`driver_unavailable`) rather than run
 * the sandbox unrestricted. Networks are created without IPv6.
 */
import type Docker from "dockerode";
import { BayError } from "../../errors.ts";
import { engineStatus, translateDockerError } from "./docker-errors.ts";

export type EgressPolicy = "private" | "all";

export interface ManagedNetwork {
  /** Docker network name. */
  network: string;
  /** Host bridge interface (<= 15 characters), what the rules match on. */
  bridge: string;
}

export const MANAGED_NETWORKS: Record<EgressPolicy, ManagedNetwork> = {
  private: { network: "bay-egress-restricted", bridge: "bay-egress-p0" },
  all: { network: "bay-egress-none", bridge: "bay-egress-n0" },
};

/** Destinations a `private` sandbox may not open connections to. */
export const BLOCKED_RANGES = ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"];

export const FORWARD_CHAIN = "BAY-EGRESS";
export const INPUT_CHAIN = "BAY-EGRESS-IN";
const REJECT = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"];
const ESTABLISHED = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"];

/** One rule: the chain and the match/target arguments after `-A <chain>`. */
export interface Rule {
  chain: string;
  args: string[];
}

/** The rules for one policy; pure, so the rule set is reviewable and unit-tested. */
export function egressRules(policy: EgressPolicy): Rule[] {
  const dev = MANAGED_NETWORKS[policy].bridge;
  const rules: Rule[] = [
    { chain: FORWARD_CHAIN, args: ["-i", dev, ...ESTABLISHED] },
    { chain: INPUT_CHAIN, args: ["-i", dev, ...ESTABLISHED] },
    // Nothing from the sandbox to the Docker host itself (Bay, databases, SSH, …).
    { chain: INPUT_CHAIN, args: ["-i", dev, ...REJECT] },
  ];
  if (policy === "all") rules.push({ chain: FORWARD_CHAIN, args: ["-i", dev, ...REJECT] });
  else for (const cidr of BLOCKED_RANGES) rules.push({ chain: FORWARD_CHAIN, args: ["-i", dev, "-d", cidr, ...REJECT] });
  return rules;
}

export interface CommandResult {
  code: number;
  stderr: string;
}
export type RunCommand = (argv: string[]) => Promise<CommandResult>;

const runBinary: RunCommand = async (argv) => {
  try {
    const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe" });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    return { code, stderr: stderr.trim() };
  } catch (e) {
    return { code: 127, stderr: (e as Error).message };
  }
};

export interface EgressGuardOptions {
  /** False when the engine is remote (tcp://…): rules on this host would not apply there. */
  local: boolean;
  run?: RunCommand;
  /** iptables executable; default "iptables". */
  iptables?: string;
}

/** Installs the managed networks and their rules; `prepare` returns the network a container must join. */
export class EgressGuard {
  private readonly run: RunCommand;
  private readonly iptables: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly docker: Docker,
    private readonly opts: EgressGuardOptions,
  ) {
    this.run = opts.run ?? runBinary;
    this.iptables = opts.iptables ?? "iptables";
  }

  /** Ensures network and rules for `policy` (serialised within this process); returns the network name. */
  prepare(policy: EgressPolicy): Promise<string> {
    const next = this.queue.then(() => this.install(policy));
    this.queue = next.catch(() => {});
    return next;
  }

  private async install(policy: EgressPolicy): Promise<string> {
    const managed = MANAGED_NETWORKS[policy];
    if (!this.opts.local) {
      throw failure(
        policy,
        "the Docker engine is remote (DOCKER_HOST=tcp://…); egress rules can only be installed when Bay runs on the Docker host",
      );
    }
    await this.ensureNetwork(policy, managed);
    await this.ensureChain(FORWARD_CHAIN, "DOCKER-USER", policy);
    await this.ensureChain(INPUT_CHAIN, "INPUT", policy);
    for (const rule of egressRules(policy)) {
      const check = await this.ipt(["-C", rule.chain, ...rule.args]);
      if (check.code === 0) continue;
      const add = await this.ipt(["-A", rule.chain, ...rule.args]);
      if (add.code !== 0) throw failure(policy, `iptables -A ${rule.chain} failed: ${add.stderr}`);
    }
    return managed.network;
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
        throw failure(
          policy,
          `cannot create iptables chain ${chain} (Bay must run as root on the Docker host with iptables): ${created.stderr}`,
        );
      }
    }
    if ((await this.ipt(["-C", parent, "-j", chain])).code === 0) return;
    const jump = await this.ipt(["-I", parent, "1", "-j", chain]);
    if (jump.code !== 0) throw failure(policy, `cannot add the jump from ${parent} to ${chain}: ${jump.stderr}`);
  }

  private async ensureNetwork(policy: EgressPolicy, managed: ManagedNetwork): Promise<void> {
    try {
      const info = await this.docker.getNetwork(managed.network).inspect();
      const bridge = info.Options?.["com.docker.network.bridge.name"];
      if (bridge !== managed.bridge) {
        throw failure(policy, `network ${managed.network} exists but was not created by Bay (bridge ${bridge ?? "unnamed"}); remove it`);
      }
      return;
    } catch (e) {
      if (e instanceof BayError) throw e;
      if (engineStatus(e) !== 404) throw translateDockerError(e, `inspect network ${managed.network}`);
    }
    try {
      await this.docker.createNetwork({
        Name: managed.network,
        Driver: "bridge",
        CheckDuplicate: true,
        EnableIPv6: false,
        Labels: { "bay.managed": "egress", "bay.egress_policy": policy },
        Options: {
          "com.docker.network.bridge.name": managed.bridge,
          // Sandboxes on the network cannot talk to each other.
          "com.docker.network.bridge.enable_icc": "false",
        },
      });
    } catch (e) {
      // Another Bay created it in the meantime.
      if (engineStatus(e) === 409) return;
      throw translateDockerError(e, `create network ${managed.network}`);
    }
  }
}

function failure(policy: EgressPolicy, why: string): BayError {
  return new BayError("driver_unavailable", `cannot restrict sandbox egress (${policy}): ${why}`, {
    details: { egress_policy: policy, network: MANAGED_NETWORKS[policy].network },
  });
}
