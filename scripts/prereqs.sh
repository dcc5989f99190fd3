#!/usr/bin/env bash
# Host prerequisites for running or testing Bay, idempotent and quiet when
# everything is already there: Bun, a Docker engine that answers, the
# JavaScript dependencies, the Ship images, Debian's IPython for Ship's
# in-process tests, Debian's Chromium for the /docs page test and Prometheus's
# tools for the metrics tests. Sourced by
# scripts/run.sh, scripts/test.sh and .ci/run.
#
# BAY_PREREQS=run (scripts/run.sh) leaves out what only the tests need (IPython
# on the host, Chromium, Prometheus); the default, test, installs everything.
# Sets BAY_STARTED_DOCKERD=1 when it had to start dockerd itself.
set -euo pipefail
BAY_PREREQS="${BAY_PREREQS:-test}"
case "$BAY_PREREQS" in
  run | test) ;;
  *) printf '[bay] BAY_PREREQS must be run or test, not %s\n' "$BAY_PREREQS" >&2; exit 2 ;;
esac

say() { printf '[bay] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# Bun: shipped inside an npm package, so the npm registry is enough.
if ! command -v bun >/dev/null 2>&1; then
  say "installing Bun (npm install -g bun)"
  npm install -g bun >/tmp/bay-bun-install.log 2>&1 || { say "npm install -g bun failed; see /tmp/bay-bun-install.log"; exit 1; }
fi

# Docker engine: the client alone is not enough.
if ! command -v dockerd >/dev/null 2>&1; then
  say "installing docker.io"
  apt_install docker.io
fi
export BAY_STARTED_DOCKERD="${BAY_STARTED_DOCKERD:-}"
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /tmp/bay-dockerd.log)"
  (setsid dockerd >/tmp/bay-dockerd.log 2>&1 &)
  BAY_STARTED_DOCKERD=1
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { say "dockerd did not come up; see /tmp/bay-dockerd.log"; exit 1; }
fi

# gVisor for the `python-gvisor` profile: Debian's runsc, registered with dockerd.
# On these machines (Firecracker microVMs) runsc needs the ptrace platform, and
# --network=host, which here means the container's own network namespace made by
# Docker, so Docker's networks and Bay's iptables rules still apply.
command -v runsc >/dev/null 2>&1 || apt_install runsc
if ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
  say "registering runsc (gVisor) with dockerd in /etc/docker/daemon.json"
  as_root mkdir -p /etc/docker
  as_root bun -e '
    const fs = require("node:fs");
    const path = "/etc/docker/daemon.json";
    const conf = fs.existsSync(path) ? JSON.parse(fs.readFileSync(path, "utf8") || "{}") : {};
    conf.runtimes = { ...(conf.runtimes ?? {}), runsc: { path: "/usr/bin/runsc", runtimeArgs: ["--platform=ptrace", "--network=host"] } };
    fs.writeFileSync(path, JSON.stringify(conf, null, 2) + "\n");
  '
  # SIGHUP makes dockerd reload its runtimes without stopping any container.
  for pid in $(pgrep -x dockerd); do as_root kill -HUP "$pid"; done
  for _ in $(seq 1 20); do docker info --format '{{json .Runtimes}}' | grep -q '"runsc"' && break; sleep 0.5; done
  docker info --format '{{json .Runtimes}}' | grep -q '"runsc"' || say "warning: dockerd did not pick up runsc; the python-gvisor profile will not start"
fi

if [ "$BAY_PREREQS" = test ]; then
  # Ship's python kernel is tested in-process on the host too: it needs Debian's IPython.
  if ! /usr/bin/python3 -c 'import IPython, matplotlib' >/dev/null 2>&1; then
    say "installing python3-ipython and python3-matplotlib for Ship's host tests"
    apt_install python3-ipython python3-matplotlib
  fi
  # The Python client is installed with pip into a virtual environment by its tests.
  if ! python3 -m pip --version >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    say "installing python3-pip and python3-venv for the Python client's packaging test"
    apt_install python3-pip python3-venv
  fi
  # Ship's tests look at a process's stdin socket pair with ss (iproute2) and lock files with chattr (e2fsprogs).
  command -v ss >/dev/null 2>&1 || apt_install iproute2
  command -v chattr >/dev/null 2>&1 || apt_install e2fsprogs
  # GET /docs is tested in Debian's headless Chromium (driven by playwright-core, which never downloads a browser).
  command -v chromium >/dev/null 2>&1 || { say "installing chromium for the /docs browser test"; apt_install chromium; }
  # GET /metrics is tested with Prometheus's own tools: promtool and a real prometheus.
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    say "installing prometheus (promtool and the server) for the metrics tests"
    apt_install prometheus
  fi
fi
# The images are built from a debootstrap'ed base when no registry answers.
command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap

say "installing JavaScript dependencies"
bun install --frozen-lockfile >/dev/null

say "ensuring Ship images (reuses what is present)"
bun run image:build
