/**
 * The shape of a binary (protobuf) Connect message, judged before Connect decodes it:
 * protobuf-es spends ~1 µs per field on Bay's one event loop, so 2 MiB of one-byte
 * unknown fields held it 1.2-2.2 s (review s90 M2), as 2 MiB of nested JSON brackets
 * did before json-shape.ts. A message of at most MAX_PROTO_FIELDS values, counting those
 * of its message fields, map entries, groups and packed lists, costs a few ms at the
 * most; an envd request holds a handful (a path, a command and its arguments and
 * variables, stdin as one bytes field).
 *
 * The walk follows the method's input descriptor and reads each field as protobuf-es
 * will: a known field sent with another wire type than its kind's is refused (protobuf-es
 * reads a known field by its kind whatever the tag says, so a message field sent as
 * fixed64 hid a million map keys from a walk by wire type, review s91), and so is a
 * message the walk cannot read. It stops at the first value past the limit, so it costs
 * at most that many reads.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

export const MAX_PROTO_FIELDS = 10_000;
/** Deeper than any envd message (they nest three levels at most). */
const MAX_DEPTH = 32;

/** A message past the limits, or not readable as its kind. */
export class ProtoShapeError extends Error {}

/** Throws ProtoShapeError when `bytes` is not a readable `desc` message of at most MAX_PROTO_FIELDS values. */
export function checkProtoShape(bytes: Uint8Array, desc: DescMessage): void {
  try {
    walk(new BinaryReader(bytes), desc, { left: MAX_PROTO_FIELDS }, 0, undefined);
  } catch (e) {
    if (e instanceof ProtoShapeError) throw e;
    throw new ProtoShapeError(`the message is not readable protobuf (${(e as Error).message})`);
  }
}

/** The wire type a scalar is sent with, unpacked. */
function scalarWire(t: ScalarType): WireType {
  switch (t) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WireType.Bit32;
    default:
      return WireType.Varint;
  }
}

/** What a known field may be sent as: its message (or map entry), a packed list of `packed` wire type values, or a plain value. */
function expected(field: DescField): {
  wire: WireType;
  message?: DescMessage;
  entry?: DescField & { fieldKind: "map" };
  packed?: WireType;
} {
  switch (field.fieldKind) {
    case "message":
      return { wire: field.delimitedEncoding ? WireType.StartGroup : WireType.LengthDelimited, message: field.message };
    case "map":
      return { wire: WireType.LengthDelimited, entry: field };
    case "enum":
      return { wire: WireType.Varint };
    case "scalar":
      return { wire: scalarWire(field.scalar) };
    case "list": {
      if (field.listKind === "message")
        return { wire: field.delimitedEncoding ? WireType.StartGroup : WireType.LengthDelimited, message: field.message };
      const one = field.listKind === "enum" ? WireType.Varint : scalarWire(field.scalar);
      return one === WireType.LengthDelimited ? { wire: one } : { wire: one, packed: one };
    }
  }
}

/** Values in a packed list's bytes. */
function packedCount(bytes: Uint8Array, wire: WireType): number {
  if (wire === WireType.Bit32) return bytes.length / 4;
  if (wire === WireType.Bit64) return bytes.length / 8;
  let n = 0;
  for (const b of bytes) if (b < 0x80) n++;
  return n;
}

function walk(r: BinaryReader, desc: DescMessage | undefined, budget: { left: number }, depth: number, group: number | undefined): void {
  const take = (n: number) => {
    budget.left -= n;
    if (budget.left < 0) throw new ProtoShapeError(`the message holds more than ${MAX_PROTO_FIELDS} values`);
  };
  const deeper = () => {
    if (depth >= MAX_DEPTH) throw new ProtoShapeError(`the message nests deeper than ${MAX_DEPTH} levels`);
  };
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (wt === WireType.EndGroup) {
      if (no === group) return;
      throw new ProtoShapeError("the message ends a group it did not start");
    }
    take(1);
    const field = desc?.fields.find((f) => f.number === no);
    const want = field ? expected(field) : undefined;
    if (want && wt !== want.wire && !(want.packed !== undefined && wt === WireType.LengthDelimited)) {
      throw new ProtoShapeError(`field ${no} (${field!.name}) is sent as wire type ${wt}, not as its kind's ${want.wire}`);
    }
    if (wt === WireType.StartGroup) {
      deeper();
      walk(r, want?.message, budget, depth + 1, no);
    } else if (wt !== WireType.LengthDelimited) {
      r.skip(wt, no);
    } else if (want?.message) {
      deeper();
      walk(new BinaryReader(r.bytes()), want.message, budget, depth + 1, undefined);
    } else if (want?.entry) {
      deeper();
      walkEntry(new BinaryReader(r.bytes()), want.entry, take, (bytes, message) =>
        walk(new BinaryReader(bytes), message, budget, depth + 2, undefined),
      );
    } else if (want?.packed !== undefined) {
      take(packedCount(r.bytes(), want.packed));
    } else {
      r.skip(wt, no);
    }
  }
  if (group !== undefined) throw new ProtoShapeError("the message ends inside a group");
}

/** A map entry: its key (field 1) and value (field 2), each as its kind; a message value walked. */
function walkEntry(
  r: BinaryReader,
  map: DescField & { fieldKind: "map" },
  take: (n: number) => void,
  message: (bytes: Uint8Array, desc: DescMessage) => void,
): void {
  const value = map.mapKind === "message" ? WireType.LengthDelimited : map.mapKind === "enum" ? WireType.Varint : scalarWire(map.scalar);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    take(1);
    if (wt === WireType.StartGroup || wt === WireType.EndGroup) throw new ProtoShapeError(`a ${map.name} entry holds a group`);
    const want = no === 1 ? scalarWire(map.mapKey) : no === 2 ? value : undefined;
    if (want !== undefined && wt !== want)
      throw new ProtoShapeError(`a ${map.name} entry's field ${no} is sent as wire type ${wt}, not ${want}`);
    if (no === 2 && map.mapKind === "message") message(r.bytes(), map.message);
    else r.skip(wt, no);
  }
}
