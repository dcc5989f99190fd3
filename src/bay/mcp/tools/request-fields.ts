/**
 * The MCP tools' input fields that Bay's REST API checks, read off the schemas
 * generated from `openapi/bay.v1.yaml`, the one home of their limits: a tool takes
 * what the route takes. A field with a default there is optional here with no
 * default, so a tool sends it only when the caller gave it and Bay fills in the rest.
 */
import { zCodeExecRequest, zCreateContextRequest, zLanguage, zRunEnv, zShellExecRequest } from "../../api/generated/schemas.ts";

const code = zCodeExecRequest.unwrap().shape;
const shell = zShellExecRequest.unwrap().shape;
const context = zCreateContextRequest.unwrap().shape;

export const execFields = {
  code: code.code,
  command: shell.command,
  language: zLanguage.unwrap(),
  timeout: code.timeout.removeDefault().optional().describe(`Seconds (default ${code.timeout.def.defaultValue}).`),
  cwd: shell.cwd.describe("Directory relative to /workspace."),
  contextCwd: context.cwd,
  env: zRunEnv.unwrap().optional().describe("Environment variables for this run only (the code and what it starts see them)."),
};
