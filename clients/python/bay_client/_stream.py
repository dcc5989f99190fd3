"""A streamed call's answer: sent when the method is called (a refusal raises there),
read as Events while iterated, its connection closed when it ends, when `close()` is
called, when a `with` block is left, or when nothing refers to it any more. Closing
before the end tells Bay the client went away, which interrupts a streamed run."""

import http.client
import json
import socket
import threading
from typing import Any, Iterator, Optional

from ._errors import BayError, bad_answer
from ._sse import Event, events

# How much is read from the socket at a time (streams and downloads written as they come).
CHUNK = 1 << 16


class EventStream:
    """The events of one streamed call, as they come: `for e in stream`, `next(stream)`,
    `with stream:`, `stream.close()`."""

    def __init__(self, conn: http.client.HTTPConnection, res: http.client.HTTPResponse, max_bytes: int) -> None:
        self._conn: Optional[http.client.HTTPConnection] = conn
        self._lock = threading.Lock()
        # The answer holds the socket (http.client hands it over for a body without a length).
        self._res = res
        self._it = self._read(res, max_bytes)

    @staticmethod
    def _read(res: http.client.HTTPResponse, max_bytes: int) -> Iterator[Event]:
        if res.status == 204 or res.getheader("Content-Length") == "0":
            return
        kind = (res.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if kind == "application/json":
            # An answer Bay gives as one JSON body instead (a background command): one `result` Event.
            raw = res.read(max_bytes + 1)
            if len(raw) > max_bytes:
                raise BayError(res.status, "answer_too_large", f"the answer is over max_answer_bytes ({max_bytes})",
                               None, res.getheader("X-Request-Id"))
            try:
                yield Event("result", json.loads(raw))
            except (ValueError, RecursionError):
                raise bad_answer(res.status, res.headers, f"the answer is not JSON: {raw[:200]!r}")
            return
        if kind != "text/event-stream":
            raise bad_answer(res.status, res.headers, f"expected an event stream, got {kind or 'no content type'}")
        yield from events(iter(lambda: res.read1(CHUNK), b""), res.status, res.getheader("X-Request-Id"), max_bytes)

    def __iter__(self) -> "EventStream":
        return self

    def __next__(self) -> Event:
        if self._conn is None:
            raise StopIteration
        try:
            return next(self._it)
        except StopIteration:
            self.close()
            raise
        except BaseException:
            if self._conn is None:
                raise StopIteration from None  # closed meanwhile (by another thread): the end
            # A malformed stream, a lost connection or an interrupt: the connection is done.
            self.close()
            raise

    def close(self) -> None:
        """Closes the connection (Bay interrupts a run still streaming); closing twice is
        harmless, and so is closing from another thread while one reads (its read ends)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is None:
            return
        # The socket first: a read blocked in another thread returns, and Bay sees the
        # client go even if a reference to the socket stays somewhere.
        sock = conn.sock or getattr(getattr(self._res.fp, "raw", None), "_sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self._it.close()
        except ValueError:
            pass  # the generator is running in the reading thread: its read fails and it ends
        self._res.close()
        conn.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
