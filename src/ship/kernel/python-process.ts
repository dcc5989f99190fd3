import { randomBytes } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childEnv } from "../child-env.ts";
import { KernelProcess } from "./kernel-process.ts";
import driverSource from "./driver.py" with { type: "text" };
import captureSource from "./driver_capture.py" with { type: "text" };
import channelSource from "./driver_channel.py" with { type: "text" };

/** How to start a Python driver process. */
export interface PythonProcessOptions {
  /** Python executable. */
  python: string;
  /** The workspace root (HOME-like; the driver's SHIP_WORKSPACE). */
  workspace: string;
  /** The context's working directory; default the workspace. */
  cwd?: string;
  maxOutputBytes: number;
}

/**
 * Writes the embedded driver and its two parts (driver_channel.py, driver_capture.py)
 * to temp files (again on every start, in case user code removed them) so `ps` shows a
 * short command line; the scripts themselves live inside the Ship binary, so the
 * host and the compiled image run the same code. Answers the driver's argv.
 */
function writeDriverScripts(): string[] {
  const files: Array<[string, string]> = [
    ["driver", driverSource],
    ["channel", channelSource],
    ["capture", captureSource],
  ];
  return files.map(([name, source]) => {
    const path = join(tmpdir(), `ship-kernel-${name}-${process.pid}.py`);
    writeWhole(path, source);
    return path;
  });
}

/** Written beside and renamed into place: a kernel starting meanwhile never reads half a file. */
function writeWhole(path: string, text: string): void {
  const temp = `${path}.${randomBytes(6).toString("hex")}`;
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, path);
}

/**
 * One Python driver process (driver.py: an IPython shell speaking the kernel line
 * protocol). -I: neither the script's (writable) directory nor the user site-packages
 * nor PYTHON* variables can change what the driver imports.
 */
export function startPythonProcess(opts: PythonProcessOptions): KernelProcess {
  const cwd = opts.cwd ?? opts.workspace;
  return new KernelProcess({
    command: [opts.python, "-I", "-u", ...writeDriverScripts()],
    cwd,
    env: childEnv({
      SHIP_WORKSPACE: opts.workspace,
      SHIP_CONTEXT_CWD: cwd,
      SHIP_MAX_OUTPUT_BYTES: String(opts.maxOutputBytes),
    }),
    maxOutputBytes: opts.maxOutputBytes,
    label: "python kernel",
  });
}
