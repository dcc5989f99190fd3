/**
 * Helpers for the network isolation tests: test-made Docker networks on chosen
 * private or link-local subnets, stand-in targets on them, a connect probe run
 * inside a sandbox, and readers of Bay's installed iptables rules. Every address
 * probed belongs to a container or network the test created, or to this host.
 */
import type Docker from "dockerode";
import type { TestBay } from "../../support/harness.ts";
import { py } from "./e2e.ts";

/** A network the test created: its name, subnet and the host's (gateway) address on it. */
export interface TestNetwork {
  name: string;
  subnet: string;
  gateway: string;
}

const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** Random /24 subnets inside each range the isolation rules refuse (never 10.255/16, where this host's resolver lives). */
export const SUBNETS = {
  linkLocal: () => `169.254.${rand(10, 160)}.0/24`,
  ten: () => `10.${rand(100, 199)}.${rand(0, 255)}.0/24`,
  oneSevenTwo: () => `172.${rand(16, 31)}.${rand(0, 255)}.0/24`,
  oneNineTwo: () => `192.168.${rand(0, 255)}.0/24`,
  cgnat: () => `100.${rand(64, 127)}.${rand(0, 255)}.0/24`,
};

/** `a.b.c.0/24` → `a.b.c.host`. */
export const hostIn = (subnet: string, host: number) => subnet.replace(/\.0\/24$/, `.${host}`);

/** Creates a labelled bridge network on a subnet from `pick`, retrying when the subnet is taken. */
export async function createSubnetNetwork(
  docker: Docker,
  name: string,
  labels: Record<string, string>,
  pick: () => string,
): Promise<TestNetwork> {
  let last: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    const subnet = pick();
    const gateway = hostIn(subnet, 1);
    try {
      await docker.createNetwork({
        Name: name,
        Driver: "bridge",
        Labels: labels,
        IPAM: { Driver: "default", Config: [{ Subnet: subnet, Gateway: gateway }] },
      });
      return { name, subnet, gateway };
    } catch (e) {
      last = e;
      if (!/overlap|already/i.test(String(e))) throw e;
    }
  }
  throw new Error(`no free subnet for ${name}: ${String(last)}`);
}

/**
 * Outcome of a TCP connect from inside a sandbox: "open", "timeout", or the errno
 * name. Bay's rules REJECT with icmp-admin-prohibited, which the sandbox sees as
 * EHOSTUNREACH at once; a closed port would be ECONNREFUSED and Docker's own
 * isolation a silent drop (timeout). So EHOSTUNREACH names Bay's refusal.
 */
export async function probeFrom(t: TestBay, sandboxId: string, targets: Array<[string, number]>): Promise<string[]> {
  const code = [
    "import socket, errno, json",
    "def probe(h, p):",
    "    s = socket.socket(); s.settimeout(4)",
    "    try:",
    "        s.connect((h, p)); return 'open'",
    "    except socket.timeout: return 'timeout'",
    "    except OSError as e: return errno.errorcode.get(e.errno, str(e.errno))",
    "    finally: s.close()",
    `print(json.dumps([probe(h, p) for h, p in ${JSON.stringify(targets)}]))`,
  ].join("\n");
  const r = await py(t, sandboxId, code, 60);
  if (r.status !== 200 || !r.body.success) throw new Error(`probe failed: ${r.status} ${JSON.stringify(r.body)}`);
  return JSON.parse(r.body.output) as string[];
}

/** The lines of `iptables -S chain`. */
export function chainRules(chain: string): string[] {
  const out = Bun.spawnSync(["iptables", "-w", "5", "-S", chain]);
  if (out.exitCode !== 0) throw new Error(`iptables -S ${chain}: ${out.stderr.toString()}`);
  return out.stdout
    .toString()
    .split("\n")
    .filter((l) => l.startsWith("-A "));
}

/** One rule of `iptables -L -v -n -x` with its packet counter. */
export interface CountedRule {
  pkts: number;
  target: string;
  in: string;
  out: string;
  destination: string;
}

/** Rules of `chain` with their packet counters. */
export function ruleCounters(chain: string): CountedRule[] {
  const out = Bun.spawnSync(["iptables", "-w", "5", "-L", chain, "-v", "-n", "-x"]).stdout.toString();
  return out
    .split("\n")
    .slice(2)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 9)
    .map((f) => ({ pkts: Number(f[0]), target: f[2]!, in: f[5]!, out: f[6]!, destination: f[8]! }));
}

/** Packets rejected so far in `chain` for traffic in from `bridge`, by the rules `match` picks. */
export function rejected(chain: string, bridge: string, match: (r: CountedRule) => boolean = () => true): number {
  return ruleCounters(chain)
    .filter((r) => r.target === "REJECT" && r.in === bridge && match(r))
    .reduce((n, r) => n + r.pkts, 0);
}

/** The IPv4 address of a container on a network. */
export async function addressOn(docker: Docker, containerId: string, network: string): Promise<string> {
  const info = await docker.getContainer(containerId).inspect();
  const ip = info.NetworkSettings.Networks[network]?.IPAddress;
  if (!ip) throw new Error(`container ${containerId} has no address on ${network}`);
  return ip;
}
