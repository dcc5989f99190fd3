/**
 * The shape of a binary (protobuf) Connect message, judged before Connect decodes it:
 * protobuf-es spends ~1 µs per field on Bay's one event loop, so 2 MiB of one-byte
 * unknown fields held it 1.2-2.2 s (review s90 M2), as 2 MiB of nested JSON brackets
 * did before json-shape.ts. A message of at most MAX_PROTO_FIELDS fields, counting those
 * of its message fields and groups, costs a few ms at the most; an envd request holds a
 * handful (a path, a command and its arguments and variables, stdin as one bytes field).
 *
 * The walk follows the method's input descriptor into message fields (a bytes field of
 * any size is one field), and stops at the first field past the limit, so it costs at
 * most that many reads. Wire data it cannot read is left to Connect, which refuses it.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

export const MAX_PROTO_FIELDS = 10_000;
/** Deeper than any envd message (they nest three levels at most). */
const MAX_DEPTH = 32;

/** A message past the limit. */
export class ProtoShapeError extends Error {}

/** Throws ProtoShapeError when `bytes`, a `desc` message, holds more than MAX_PROTO_FIELDS fields. */
export function checkProtoShape(bytes: Uint8Array, desc: DescMessage): void {
  const budget = { left: MAX_PROTO_FIELDS };
  try {
    walk(new BinaryReader(bytes), desc, budget, 0, undefined);
  } catch (e) {
    if (e instanceof ProtoShapeError) throw e;
    // Not readable as protobuf: Connect's decoder says so.
  }
}

function walk(r: BinaryReader, desc: DescMessage | undefined, budget: { left: number }, depth: number, group: number | undefined): void {
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (wt === WireType.EndGroup && no === group) return;
    if (--budget.left < 0) throw new ProtoShapeError(`the message holds more than ${MAX_PROTO_FIELDS} fields`);
    if (wt === WireType.StartGroup) {
      if (depth >= MAX_DEPTH) throw new ProtoShapeError(`the message nests deeper than ${MAX_DEPTH} levels`);
      walk(r, undefined, budget, depth + 1, no);
      continue;
    }
    if (wt !== WireType.LengthDelimited) {
      r.skip(wt, no);
      continue;
    }
    const inner = r.bytes();
    const field = desc?.fields.find((f) => f.number === no);
    const message =
      field?.fieldKind === "message" || (field?.fieldKind === "list" && field.listKind === "message") ? field.message : undefined;
    // A map entry is a message of a key and a value.
    if (!message && field?.fieldKind !== "map") continue;
    if (depth >= MAX_DEPTH) throw new ProtoShapeError(`the message nests deeper than ${MAX_DEPTH} levels`);
    walk(new BinaryReader(inner), message, budget, depth + 1, undefined);
  }
}
