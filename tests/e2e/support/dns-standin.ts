/**
 * A stand-in upstream DNS server for network tests: UDP on `hostname:53` of this
 * host, answering one made-up name with one address (A records only; every other
 * question gets NXDOMAIN, so nothing is ever forwarded further). It records where
 * each query came from, which shows from which network namespace Docker's
 * embedded resolver forwards.
 */

export interface DnsStandIn {
  /** Source addresses of the queries received, in order. */
  readonly queries: Array<{ from: string; name: string; type: number }>;
  close(): void;
}

const TYPE_A = 1;

/** Reads the question name starting at `offset`; returns it and the offset after it (no compression in questions). */
function readName(msg: Uint8Array, offset: number): { name: string; end: number } | null {
  const labels: string[] = [];
  let at = offset;
  while (at < msg.length) {
    const len = msg[at]!;
    if (len === 0) return { name: labels.join(".").toLowerCase(), end: at + 1 };
    if (len > 63 || at + 1 + len > msg.length) return null;
    labels.push(new TextDecoder().decode(msg.subarray(at + 1, at + 1 + len)));
    at += 1 + len;
  }
  return null;
}

/** The answer to one query, or null for something that is not a single-question query. */
export function dnsAnswer(query: Uint8Array, name: string, ipv4: string): { reply: Uint8Array; name: string; type: number } | null {
  if (query.length < 12) return null;
  const view = new DataView(query.buffer, query.byteOffset, query.byteLength);
  if (view.getUint16(4) !== 1 || (query[2]! & 0x80) !== 0) return null;
  const q = readName(query, 12);
  if (!q || q.end + 4 > query.length) return null;
  const type = view.getUint16(q.end);
  const question = query.subarray(12, q.end + 4);
  const hit = q.name === name.toLowerCase() && type === TYPE_A;
  const header = new Uint8Array(12);
  const h = new DataView(header.buffer);
  h.setUint16(0, view.getUint16(0)); // id
  // QR, opcode 0, AA, RD copied; RA; rcode 0 (NOERROR) or 3 (NXDOMAIN).
  h.setUint16(2, 0x8400 | (query[2]! & 0x01 ? 0x0100 : 0) | 0x0080 | (q.name === name.toLowerCase() ? 0 : 3));
  h.setUint16(4, 1);
  h.setUint16(6, hit ? 1 : 0);
  const answer = hit ? new Uint8Array([0xc0, 0x0c, 0, TYPE_A, 0, 1, 0, 0, 0, 30, 0, 4, ...ipv4.split(".").map(Number)]) : new Uint8Array();
  const reply = new Uint8Array(header.length + question.length + answer.length);
  reply.set(header, 0);
  reply.set(question, header.length);
  reply.set(answer, header.length + question.length);
  return { reply, name: q.name, type };
}

/** Starts the stand-in on `hostname:53` (an address of this host, e.g. a test network's gateway). */
export async function startDnsStandIn(hostname: string, name: string, ipv4: string): Promise<DnsStandIn> {
  const queries: DnsStandIn["queries"] = [];
  const socket = await Bun.udpSocket({
    hostname,
    port: 53,
    socket: {
      data(sock, data, port, address) {
        const a = dnsAnswer(new Uint8Array(data), name, ipv4);
        if (!a) return;
        queries.push({ from: address, name: a.name, type: a.type });
        sock.send(a.reply, port, address);
      },
    },
  });
  return { queries, close: () => socket.close() };
}
