/** Body size limit for JSON routes, answered as 413 payload_too_large in the error model. */
import { bodyLimit } from "hono/body-limit";
import { BayError } from "../../errors.ts";

export function jsonBodyLimit(maxBytes: number) {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new BayError("payload_too_large", `request body exceeds the limit of ${maxBytes} bytes`, {
        details: { limit_bytes: maxBytes },
      });
    },
  });
}
