"""HTTP for Bay's Python client: the standard library only (http.client), one
keep-alive connection per thread, Bay's error body raised as BayError, and
text/event-stream answers read as events. The operations are in _operations.py,
generated from openapi/bay.v1.yaml."""

import http.client
import json
import select
import threading
import urllib.parse
from typing import Any, BinaryIO, Dict, Iterator, NamedTuple, Optional, Union

Body = Union[bytes, BinaryIO]


class BayError(Exception):
    """Bay's error body (`{"error": {code, message, details, request_id}}`) and its status.

    `code` is one of the spec's error codes (`not_found`, `validation_error`,
    `file_not_found`, ...); `retry_after` is Retry-After's seconds on a 429 or 503.
    An answer that is not Bay's body has the code `http_error`."""

    def __init__(self, status: int, code: str, message: str, details: Optional[Dict[str, Any]] = None,
                 request_id: Optional[str] = None, retry_after: Optional[float] = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.request_id = request_id
        self.retry_after = retry_after


class Event(NamedTuple):
    """One server-sent event: its name (`stdout`, `result`, `error`, ...) and its JSON data."""

    event: str
    data: Any


class PortAnswer(NamedTuple):
    """What a server in the sandbox answered through Bay's port proxy, with its own status."""

    status: int
    headers: Dict[str, str]
    body: bytes


# A kept-alive connection the server closed: found before a request by a pending EOF
# (_dropped), or, when it closed just as the request went, by one of these; then an
# idempotent request is sent once more on a new connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
_IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE")


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether a kept connection was closed by the server (readable while no answer is due)."""
    if conn.sock is None:
        return True
    try:
        return bool(select.select([conn.sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class Transport:
    def __init__(self, base_url: str, token: Optional[str] = None, owner: Optional[str] = None,
                 timeout: float = 330.0) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port
        self._prefix = url.path.rstrip("/")
        self._timeout = timeout
        self._headers = {"User-Agent": "bay-python-client"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if owner:
            self._headers["X-Owner"] = owner
        self._local = threading.local()

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _send(self, method: str, path: str, query: Optional[Dict[str, Any]], headers: Dict[str, Optional[str]],
              json_body: Any, data: Optional[Body], accept: str, dedicated: bool):
        q = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        target = self._prefix + path + (f"?{urllib.parse.urlencode(q)}" if q else "")
        h = dict(self._headers)
        h["Accept"] = accept
        h.update({k: v for k, v in headers.items() if v is not None})
        body: Optional[Body] = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            h["Content-Type"] = "application/json"
        elif data is not None:
            body = data
            h["Content-Type"] = "application/octet-stream"
        if dedicated:
            conn = self._connect()
            conn.request(method, target, body=body, headers=h)
            return conn, conn.getresponse()
        conn = getattr(self._local, "conn", None)
        if conn is not None and _dropped(conn):
            conn.close()
            conn = None
        fresh = conn is None
        if fresh:
            conn = self._local.conn = self._connect()
        try:
            conn.request(method, target, body=body, headers=h)
            return conn, conn.getresponse()
        except _STALE:
            conn.close()
            self._local.conn = None
            # Sent again only when running it twice is harmless: Bay may have run it.
            if fresh or method not in _IDEMPOTENT or not (body is None or isinstance(body, bytes)):
                raise
            conn = self._local.conn = self._connect()
            conn.request(method, target, body=body, headers=h)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            self._local.conn = None
            raise

    def call(self, method: str, path: str, *, query: Optional[Dict[str, Any]] = None,
             headers: Optional[Dict[str, Optional[str]]] = None, json_body: Any = None,
             data: Optional[Body] = None, expect: str = "json") -> Any:
        """One request; `expect` is how a 2xx body is read: json, text, bytes or port."""
        conn, res = self._send(method, path, query, headers or {}, json_body, data,
                               "application/json" if expect == "json" else "*/*", False)
        raw = res.read()
        if res.will_close:
            self.close()
        upstream = expect == "port" and res.getheader("X-Bay-Upstream") is not None
        if not upstream and not 200 <= res.status < 300:
            raise _error(res, raw)
        if expect == "port":
            return PortAnswer(res.status, {k.lower(): v for k, v in res.getheaders()}, raw)
        if res.status == 204 or expect == "empty":
            return None
        if expect == "json":
            return json.loads(raw) if raw else None
        if expect == "text":
            return raw.decode()
        return raw

    def copy_to(self, out: BinaryIO, method: str, path: str, *, query: Optional[Dict[str, Any]] = None,
                headers: Optional[Dict[str, Optional[str]]] = None) -> int:
        """A 2xx answer's body written to `out` in chunks, on a connection of its own; the bytes written."""
        conn, res = self._send(method, path, query, headers or {}, None, None, "*/*", True)
        try:
            if not 200 <= res.status < 300:
                raise _error(res, res.read())
            written = 0
            while True:
                chunk = res.read(1 << 16)
                if not chunk:
                    return written
                out.write(chunk)
                written += len(chunk)
        finally:
            conn.close()

    def events(self, method: str, path: str, *, query: Optional[Dict[str, Any]] = None,
               headers: Optional[Dict[str, Optional[str]]] = None, json_body: Any = None) -> Iterator[Event]:
        """A text/event-stream answer as Events, on a connection of its own (closed when the
        iteration ends or is abandoned: Bay then interrupts a streamed run)."""
        conn, res = self._send(method, path, query, headers or {}, json_body, None, "text/event-stream", True)
        try:
            if not 200 <= res.status < 300:
                raise _error(res, res.read())
            name, data = "message", []
            for line in res:
                line = line.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        yield Event(name, json.loads("\n".join(data)))
                    name, data = "message", []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
        finally:
            conn.close()


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _error(res: http.client.HTTPResponse, raw: bytes) -> BayError:
    retry = res.getheader("Retry-After")
    retry_after = float(retry) if retry and retry.replace(".", "", 1).isdigit() else None
    try:
        e = json.loads(raw)["error"]
        return BayError(res.status, e["code"], e["message"], e.get("details"), e.get("request_id"), retry_after)
    except (ValueError, KeyError, TypeError):
        text = raw[:500].decode("utf-8", "replace")
        return BayError(res.status, "http_error", text or res.reason, None, res.getheader("X-Request-Id"), retry_after)


def segment(value: Any) -> str:
    """One path segment, percent-encoded (a `/` in an id cannot reach another route)."""
    return urllib.parse.quote(str(value), safe="")
