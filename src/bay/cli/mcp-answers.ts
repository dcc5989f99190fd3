/**
 * Which requests `bay mcp` has sent on and not yet seen answered, so that every
 * request gets exactly one answer: the remote's, or the relay's own error when
 * the remote cannot give one (its POST failed, or its answer ended without a
 * response for that request), and so that the relay knows when nothing is owed
 * (it exits once its input has ended and nothing is owed).
 *
 * The same id may be in flight twice (an agent's bug, not the relay's to fix):
 * each is owed its own answer.
 */
type Id = string | number;

/** How long after a POST's answer ends its unanswered requests are given up (the SDK may still be dispatching its last event). */
export const ORPHAN_GRACE_MS = 1000;

interface Pending {
  id: Id;
  /** Its POST has gone out (its answer's end is then watched). */
  sent: boolean;
}

export class AnswerLedger {
  private readonly pending: Pending[] = [];
  /** Requests the relay answered itself: a late answer from the remote for one is dropped. */
  private readonly givenUp = new Map<Id, number>();

  constructor(
    /** Answers a request with the relay's own error. */
    private readonly fail: (id: Id, message: string) => void,
    /** Called whenever a request is settled. */
    private readonly onSettled: () => void = () => {},
  ) {}

  /** Requests owed an answer. */
  get owed(): number {
    return this.pending.length;
  }

  /** A request came in from the agent and is being sent on. */
  expect(id: Id): void {
    this.pending.push({ id, sent: false });
  }

  /** A POST carrying `ids` went out; call the result when its answer has ended (or failed). */
  sent(ids: Id[]): () => void {
    const mine: Pending[] = [];
    for (const id of ids) {
      const p = this.pending.find((q) => q.id === id && !q.sent);
      if (p) {
        p.sent = true;
        mine.push(p);
      }
    }
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      setTimeout(() => this.giveUp(mine, "Bay ended its answer without a response to this request"), ORPHAN_GRACE_MS).unref?.();
    };
  }

  /** The remote answered `id`: true when the answer is to be passed on (false: the relay already answered it). */
  answered(id: Id): boolean {
    if (this.take(id)) {
      this.onSettled();
      return true;
    }
    const late = this.givenUp.get(id) ?? 0;
    if (late > 0) {
      if (late === 1) this.givenUp.delete(id);
      else this.givenUp.set(id, late - 1);
      return false;
    }
    return true; // not one the relay owes (a duplicate answer): passed on as the remote sent it
  }

  /** The relay answers `id` itself now (its POST failed). */
  failNow(id: Id, message: string): void {
    if (!this.take(id)) return;
    this.fail(id, message);
    this.onSettled();
  }

  private giveUp(requests: Pending[], message: string): void {
    let settled = false;
    for (const p of requests) {
      const i = this.pending.indexOf(p);
      if (i < 0) continue;
      this.pending.splice(i, 1);
      this.givenUp.set(p.id, (this.givenUp.get(p.id) ?? 0) + 1);
      this.fail(p.id, message);
      settled = true;
    }
    if (settled) this.onSettled();
  }

  /** Removes the oldest request owed with `id`; false when none is. */
  private take(id: Id): boolean {
    const i = this.pending.findIndex((p) => p.id === id);
    if (i < 0) return false;
    this.pending.splice(i, 1);
    return true;
  }
}

/** The ids of the requests in a POST body the MCP client sends (a message or a batch). */
export function requestIds(body: unknown): Id[] {
  if (typeof body !== "string") return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  const messages = Array.isArray(parsed) ? parsed : [parsed];
  const ids: Id[] = [];
  for (const m of messages) {
    if (m === null || typeof m !== "object" || !("method" in m) || !("id" in m)) continue;
    const id = (m as { id: unknown }).id;
    if (typeof id === "string" || typeof id === "number") ids.push(id);
  }
  return ids;
}

/** `fetch` that tells `ledger` about each POST of requests and when its answer ends (its body read to the end, failed or cancelled). */
export function ledgerFetch(
  ledger: AnswerLedger,
  inner: typeof fetch = fetch,
): (url: string | URL, init?: RequestInit) => Promise<Response> {
  return async (url, init) => {
    const ids = init?.method === "POST" ? requestIds(init.body) : [];
    if (ids.length === 0) return inner(url, init);
    const res = await inner(url, init);
    const ended = ledger.sent(ids);
    if (res.body === null) {
      ended();
      return res;
    }
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            ctl.close();
            ended();
          } else ctl.enqueue(value);
        } catch (e) {
          ctl.error(e);
          ended();
        }
      },
      cancel(reason) {
        ended();
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}
