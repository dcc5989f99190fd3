import { Hono } from "hono";
import { z } from "zod";
import { deletePath, listDirectory, readTextFile, writeTextFile } from "../filesystem/files.ts";
import { downloadResponse, receiveUpload } from "../filesystem/transfer.ts";
import { validate } from "../validation.ts";

const pathQuery = z.object({ path: z.string().min(1) });
const dirQuery = z.object({ path: z.string().min(1).default(".") });
const writeBody = z.object({ path: z.string().min(1), content: z.string() });

/** The /filesystem/* routes. */
export function filesystemRoutes(deps: { workspace: string; maxBodyBytes: number; maxUploadBytes: number; uploadIdleSeconds: number }) {
  const ws = deps.workspace;
  return new Hono()
    .get("/filesystem/files", validate("query", pathQuery), async (c) =>
      c.json(await readTextFile(ws, c.req.valid("query").path, deps.maxBodyBytes)),
    )
    .put("/filesystem/files", validate("json", writeBody), async (c) => {
      const { path, content } = c.req.valid("json");
      return c.json(await writeTextFile(ws, path, content));
    })
    .delete("/filesystem/files", validate("query", pathQuery), async (c) => c.json(await deletePath(ws, c.req.valid("query").path)))
    .get("/filesystem/directories", validate("query", dirQuery), async (c) => c.json(await listDirectory(ws, c.req.valid("query").path)))
    .post("/filesystem/upload", async (c) =>
      c.json(await receiveUpload(ws, c.req.raw, deps.maxUploadBytes, { idleMs: deps.uploadIdleSeconds * 1000 })),
    )
    .get("/filesystem/download", validate("query", pathQuery), async (c) => downloadResponse(ws, c.req.valid("query").path));
}
