/**
 * A Connect call refused before its request is read (no or wrong token, review s87):
 * answered as connect-es answers a failed call, so an E2B SDK raises its own error
 * class. Unary: the code's HTTP status and the error JSON. A stream (connect+json,
 * connect+proto): 200 and one end-stream message carrying the error.
 */
import type { ConnectError } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  contentTypeStreamRegExp,
  endStreamFlag,
  endStreamToJson,
  errorToJsonBytes,
} from "@connectrpc/connect/protocol-connect";

export function connectRefusal(contentType: string, err: ConnectError): Response {
  if (contentTypeStreamRegExp.test(contentType)) {
    const json = new TextEncoder().encode(JSON.stringify(endStreamToJson(new Headers(), err, undefined)));
    const body = encodeEnvelope(endStreamFlag, json);
    return new Response(body, { status: 200, headers: { "content-type": contentType } });
  }
  return new Response(new Uint8Array(errorToJsonBytes(err, undefined)), {
    status: codeToHttpStatus(err.code),
    headers: { "content-type": "application/json" },
  });
}
