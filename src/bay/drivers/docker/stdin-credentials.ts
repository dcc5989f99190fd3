/**
 * Hands a container its session credentials on standard input while starting
 * it: the container is created with an open, once-only stdin; Bay attaches,
 * starts it and writes one line, then closes the stream. The secret never
 * appears in the container's configuration (env, labels, command), so neither
 * `docker inspect` nor /proc/<pid>/environ inside the container shows it.
 */
import type Docker from "dockerode";

/** Create options that give the container a stdin Bay can write once. */
export const STDIN_CREDENTIALS_OPTIONS = { OpenStdin: true, StdinOnce: true, AttachStdin: true } as const;

/** Attaches to the created container's stdin, starts it, writes `line` and closes stdin. */
export async function startWithStdinLine(docker: Docker, id: string, line: string, signal?: AbortSignal): Promise<void> {
  const container = docker.getContainer(id);
  const stream = (await container.attach({ stream: true, stdin: true, hijack: true, abortSignal: signal })) as NodeJS.ReadWriteStream & {
    destroy?: () => void;
  };
  try {
    await container.start({ abortSignal: signal });
    await new Promise<void>((resolve, reject) => {
      stream.once("error", reject);
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      stream.end(`${line}\n`, () => resolve());
    });
  } finally {
    stream.destroy?.();
  }
}
