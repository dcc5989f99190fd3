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
import { EnvelopedJsonShape, JsonShape, JsonShapeError, type MessageJudge } from "../../../protocol/json-shape.ts";
import { checkProtoShape } from "./proto-shape.ts";

/** A body's pieces as they come: each passed on once judged (or throws to refuse). */
type Judge = { feed(chunk: Uint8Array, out: (piece: Uint8Array) => void): void; end(out: (piece: Uint8Array) => void): void };

/**
 * `body` judged as it comes; `maxBodyBytes` bounds the whole body (a request that carries
 * no stdin or command is a path or a selector: small), `readMaxBytes` each message.
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
  const judge = type.binary ? protoJudge(type.stream, input, readMaxBytes) : jsonJudge(type.stream);
  // A call that takes one request message (unary, a server stream): a second envelope is refused
  // before Connect decodes it only to refuse it then (review s92 I2, s93 M2).
  let messages = 0;
  const envelopes =
    type.stream && oneMessage
      ? new EnvelopedJsonShape(() => {
          if (++messages > 1) throw new JsonShapeError("this call takes one request message");
          return { feed() {}, end() {} };
        })
      : null;
  let seen = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        seen += chunk.byteLength;
        if (seen > maxBodyBytes) throw new ConnectError(`this call's request is at most ${maxBodyBytes} bytes`, Code.ResourceExhausted);
        refusing(() => {
          envelopes?.feed(chunk);
          judge.feed(chunk, (piece) => ctrl.enqueue(piece));
        });
      },
      flush(ctrl) {
        refusing(() => judge.end((piece) => ctrl.enqueue(piece)));
      },
    }),
  );
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
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let wide = 0;
  const check = (run: () => void) => {
    try {
      run();
    } catch (e) {
      if (e instanceof TypeError) throw new JsonShapeError("the JSON body is not valid UTF-8");
      throw e;
    }
  };
  return {
    feed(b) {
      shape.feed(b);
      check(() => utf8.decode(b, { stream: true }));
      for (const byte of b) if (byte >= 0x80) wide++;
      if (wide > MAX_NON_ASCII_BYTES)
        throw new JsonShapeError(`the JSON body holds more than ${MAX_NON_ASCII_BYTES} bytes of non-ASCII text`);
    },
    end: () => check(() => utf8.decode()),
  };
}

/** JSON is judged as it comes, so each piece goes on once judged (a refusal comes before the piece that completes a message). */
function jsonJudge(stream: boolean): Judge {
  const shape = stream ? new EnvelopedJsonShape(jsonMessage) : jsonMessage();
  return {
    feed(chunk, out) {
      shape.feed(chunk);
      out(chunk);
    },
    end() {
      if (!stream) (shape as MessageJudge).end();
    },
  };
}

/**
 * Protobuf is judged a whole message at a time: one message's bytes are held until it is
 * complete and judged, then passed on. A message longer than Connect reads is passed on
 * as it comes (Connect refuses it by its length).
 */
function protoJudge(stream: boolean, input: DescMessage, readMaxBytes: number): Judge {
  let held: Uint8Array[] = [];
  let size = 0;
  let passing = false;
  const take = (chunk: Uint8Array, out: (piece: Uint8Array) => void) => {
    if (passing) return out(chunk);
    held.push(chunk);
    size += chunk.byteLength;
    if (size > readMaxBytes + 5) {
      passing = true;
      for (const piece of held) out(piece);
      held = [];
    }
  };
  if (!stream) {
    return {
      feed: take,
      end(out) {
        if (passing) return;
        checkProtoShape(Buffer.concat(held), input);
        for (const piece of held) out(piece);
      },
    };
  }
  // Enveloped: a flags byte, a 4-byte length, the message; each envelope judged when whole,
  // its held pieces joined once then (not on every chunk: review s91).
  let need = 5;
  let length = -1;
  return {
    feed(chunk, out) {
      // Held up to one message and one chunk: a message longer than Connect reads is passed on by its own length below.
      if (passing) return out(chunk);
      held.push(chunk);
      size += chunk.byteLength;
      while (!passing && size >= need) {
        if (length < 0) {
          const head = held[0]!.byteLength >= 5 ? held[0]! : Buffer.concat(held).subarray(0, 5);
          length = new DataView(head.buffer, head.byteOffset, 5).getUint32(1);
          need = 5 + length;
          if (length > readMaxBytes) {
            passing = true;
            for (const piece of held) out(piece);
            held = [];
            return;
          }
          continue;
        }
        const all = held.length === 1 ? held[0]! : Buffer.concat(held);
        // A compressed message is not protobuf here (Connect refuses it: no compression is accepted).
        if ((all[0]! & 0x01) === 0) checkProtoShape(all.subarray(5, need), input);
        out(all.subarray(0, need));
        const rest = all.subarray(need);
        held = rest.byteLength > 0 ? [rest] : [];
        size = rest.byteLength;
        need = 5;
        length = -1;
      }
    },
    end(out) {
      // A partial envelope at the end: Connect says what is wrong with it.
      for (const piece of held) out(piece);
    },
  };
}
