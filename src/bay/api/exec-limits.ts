/**
 * The exec timeout's limit, read off the schema generated from `openapi/bay.v1.yaml`
 * (its one home), for the code that must hold to it without going through a route's
 * validation: E2B's one-answer runs and the CLI's flag check.
 */
import { zCodeExecRequest } from "./generated/schemas.ts";

const timeout = zCodeExecRequest.unwrap().shape.timeout.unwrap();
if (timeout.maxValue === null) throw new Error("openapi/bay.v1.yaml: CodeExecRequest.timeout has no maximum");

/** The longest exec Bay's own API runs, in seconds. */
export const MAX_EXEC_TIMEOUT_SECONDS: number = timeout.maxValue;
