/**
 * A Bay (its own process, as a real one is) whose sandbox `sb-1` has a terminal
 * that floods output as fast as the client takes it: 64 KiB frames of lines.
 * Prints its port on the first line of stdout. For `bay sandbox shell` tests.
 */
import { serveTerminalBay } from "./fake-terminal-bay.ts";

const frame = new Uint8Array(64 * 1024).fill(0x61);
for (let i = 79; i < frame.length; i += 80) frame[i] = 0x0a;
function flood(ws: import("bun").ServerWebSocket<unknown>) {
  while (ws.send(frame) > 0 && ws.getBufferedAmount() < 4 * 1024 * 1024) {}
}
console.log(serveTerminalBay(flood, flood).port);
