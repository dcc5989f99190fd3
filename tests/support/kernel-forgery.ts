/**
 * JavaScript a cell runs to write `payload` to every pipe and socket its process holds
 * (fds above 2): what a hostile JS cell can do to the kernel's private protocol channel.
 */
export function writeToEveryPipe(payload: string): string[] {
  return [
    'const fs = require("node:fs")',
    `const payload = ${JSON.stringify(payload)}`,
    'for (const fd of fs.readdirSync("/proc/self/fd").map(Number).filter((fd) => fd > 2)) {',
    '  let target = ""',
    "  try { target = fs.readlinkSync(`/proc/self/fd/${fd}`) } catch {}",
    "  if (/^(pipe|socket):/.test(target)) try { fs.writeSync(fd, payload) } catch {}",
    "}",
  ];
}
