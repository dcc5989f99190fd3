/**
 * An envd Connect call's body, judged as it streams, before Connect decodes it (review
 * s87, s90 M2): JSON by its shape (src/protocol/json-shape.ts), protobuf by its field
 * count (proto-shape.ts); a stream's messages each on their own. A message past a limit
 * fails the read as invalid_argument, before Connect has all of it. Connect's own
 * reading of the Content-Type decides JSON or protobuf, one message or a stream.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseContentType } from "@connectrpc/connect/protocol-connect";
import { COMPRESSED, EnvelopedMessages, type MessageJudge } from "../../../protocol/enveloped-messages.ts";
import { JsonShape, JsonShapeError } from "../../../protocol/json-shape.ts";
import { Utf8Check } from "../../../protocol/utf8-check.ts";
import { checkProtoShape } from "./proto-shape.ts";

/**
 * `body` judged as it comes; `maxBodyBytes` bounds the whole body (a request that carries
 * no stdin or command is a path or a selector: small), `readMaxBytes` each message. Each
 * piece goes on once judged: a refusal comes before the piece that completes a message,
 * so Connect never decodes a refused one.
 */
export function shapedBody(
  contentType: string,
  body: ReadableStream<Uint8Array> | null,
  input: DescMessage,
  readMaxBytes: number,
  maxBodyBytes = Number.POSITIVE_INFINITY,
  oneMessage = false,
): ReadableStream<Uint8Array> | null {
  const type = parseContentType(contentType);
  if (!body || !type) return body;
  const message = type.binary ? () => protoMessage(input, readMaxBytes) : jsonMessage;
  const judge = type.stream ? envelopes(message, oneMessage) : message();
  let seen = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        seen += chunk.byteLength;
        if (seen > maxBodyBytes) throw new ConnectError(`this call's request is at most ${maxBodyBytes} bytes`, Code.ResourceExhausted);
        refusing(() => judge.feed(chunk));
        ctrl.enqueue(chunk);
      },
      flush() {
        refusing(() => judge.end());
      },
    }),
  );
}

/**
 * A stream's messages, each judged on its own. A call that takes one request message
 * (unary, a server stream) refuses a second envelope before Connect decodes it only to
 * refuse it then (review s92 I2, s93 M2).
 */
function envelopes(message: () => MessageJudge, oneMessage: boolean): MessageJudge {
  let messages = 0;
  const reader = new EnvelopedMessages((flags) => {
    // Every envelope counts, a compressed one too (review s96 F3).
    if (oneMessage && ++messages > 1) throw new ConnectError("this call takes one request message", Code.InvalidArgument);
    // A compressed message is not read here; Connect refuses it (no compression is accepted).
    return (flags & COMPRESSED) === 0 ? message() : { feed() {}, end() {} };
  });
  // A partial envelope at the end: Connect says what is wrong with it.
  return { feed: (b) => reader.feed(b), end() {} };
}

function refusing(run: () => void): void {
  try {
    run();
  } catch (e) {
    throw e instanceof ConnectError ? e : new ConnectError((e as Error).message, Code.InvalidArgument);
  }
}

/**
 * Non-ASCII bytes a JSON message may hold. protobuf-es's duplicate-key check walks a
 * message's text a character at a time and allocates for each one past U+00FF: 2 MiB of
 * valid Cyrillic or CJK text cost 150-575 ms, against 25-86 ms for 2 MiB of ASCII (review
 * s93). 256 KiB of it costs a few tens of ms; the SDKs send stdin as base64 (ASCII), so
 * only a command of more non-ASCII text than this needs the binary protocol.
 */
const MAX_NON_ASCII_BYTES = 256 * 1024;

/**
 * A JSON message's text: its shape (json-shape.ts), valid UTF-8 (Connect decodes each
 * bad byte to U+FFFD, which protobuf-es then walks as above: 2 MiB of 0xff cost 75-390 ms;
 * review s92), and at most MAX_NON_ASCII_BYTES of non-ASCII text.
 */
function jsonMessage(): MessageJudge {
  const shape = new JsonShape();
  const utf8 = new Utf8Check();
  const notUtf8 = () => new JsonShapeError("the JSON body is not valid UTF-8");
  return {
    feed(b) {
      shape.feed(b);
      if (!utf8.feed(b)) throw notUtf8();
      if (utf8.nonAscii > MAX_NON_ASCII_BYTES)
        throw new JsonShapeError(`the JSON body holds more than ${MAX_NON_ASCII_BYTES} bytes of non-ASCII text`);
    },
    end() {
      if (!utf8.end()) throw notUtf8();
    },
  };
}

/**
 * Protobuf is judged a whole message at a time (proto-shape.ts): its pieces are kept until
 * it ends. A message longer than Connect reads is not judged (Connect refuses it by its length).
 */
function protoMessage(input: DescMessage, readMaxBytes: number): MessageJudge {
  let held: Uint8Array[] | null = [];
  let size = 0;
  return {
    feed(b) {
      if (!held) return;
      size += b.byteLength;
      if (size > readMaxBytes) held = null;
      else held.push(b);
    },
    end() {
      if (held) checkProtoShape(held.length === 1 ? held[0]! : Buffer.concat(held), input);
    },
  };
}
