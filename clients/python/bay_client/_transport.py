"""HTTP for Bay's Python client: the standard library only (http.client), one
keep-alive connection per thread (and per process: a fork gets its own), Bay's error
body raised as BayError, and text/event-stream answers read as Events. The operations
are in _operations.py, generated from openapi/bay.v1.yaml."""

import http.client
import json
import os
import re
import select
import ssl
import stat
import threading
import urllib.parse
from typing import Any, BinaryIO, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from ._errors import BayError, bad_answer, error_of
from ._sse import Event
from ._stream import CHUNK as _CHUNK, EventStream

Body = Union[bytes, BinaryIO]
# A query string for a server in the sandbox: a mapping (a list value repeats its key)
# or pairs, in their order.
Query = Union[Mapping[str, Any], Sequence[Tuple[str, Any]]]

__all__ = ["Body", "BayError", "Event", "EventStream", "PortAnswer", "Query", "Transport", "segment", "rest_of_path"]


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
# What a header value may hold: visible ASCII, space and tab (no CR, LF or NUL to fold or split it).
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")
_DIGITS = re.compile(r"[0-9]{1,18}")
# A header name (RFC 9110 token).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Headers a port call cannot set: Bay never sends them on to the sandbox's server (the
# caller's credentials and context, where it is on the network, what Bay and Ship set,
# hop-by-hop headers: src/bay/domain/sandbox-ports.ts and src/protocol/hop-by-hop.ts,
# kept equal by tests/unit/python-port-headers.test.ts), so setting one would do nothing
# or override the client's own (Authorization, X-Owner; the request id has its argument).
PORT_HEADERS_NOT_SENT = frozenset((
    "host", "authorization", "x-owner", "cookie", "x-api-key", "x-access-token", "x-request-id", "content-length",
    "forwarded", "via", "x-real-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip", "fastly-client-ip",
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "expect", "x-cluster-client-ip", "client-ip", "remote-user",
    "x-remote-user", "x-webauth-user", "x-ms-client-principal", "x-ms-client-principal-id",
    "x-ms-client-principal-name", "x-ms-client-principal-idp"))
PORT_HEADER_PREFIXES_NOT_SENT = (
    "x-forwarded-", "x-bay-", "x-ship-", "e2b-", "cf-access-", "x-amzn-oidc-", "x-goog-iap-", "x-goog-authenticated-",
    "x-auth-request-", "x-ms-token-", "x-pomerium-", "x-authentik-", "x-vouch-", "x-original-", "x-envoy-")
# What a port call's query value may be: one of these, or a list or tuple of them.
_QUERY_SCALARS = (str, int, float, bool)


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether a kept connection was closed by the server (readable while no answer is due)."""
    if conn.sock is None:
        return True
    try:
        return bool(select.select([conn.sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def segment(value: Any) -> str:
    """One path segment, percent-encoded (a `/` in an id cannot reach another route)."""
    text = str(value)
    if text in ("", ".", ".."):
        raise ValueError(f"{text!r} is not an id: it would name another route")
    return urllib.parse.quote(text, safe="")


def rest_of_path(value: str) -> str:
    """The port proxy's path for the sandbox's server: slashes kept, no `.` or `..` segment
    (the URL would be resolved to another of Bay's routes, called with this client's credentials)."""
    if any(s in (".", "..") for s in value.split("/")):
        raise ValueError(f"the path {value!r} has a '.' or '..' segment")
    return urllib.parse.quote(value, safe="/")


def _check_header(name: str, value: str) -> str:
    if not _HEADER_VALUE.fullmatch(value):
        raise ValueError(f"{name} holds a character a header cannot carry (visible ASCII, space and tab only)")
    return value


def _port_headers(headers: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """Headers for a server in the sandbox, checked: a name that is a token and not one of
    the client's own, a value a header can carry."""
    out: Dict[str, str] = {}
    if headers is None:
        return out
    if not isinstance(headers, Mapping):
        raise ValueError("headers= takes a mapping of names to values")
    for name, value in headers.items():
        # type() and str.lower: a str subclass cannot answer its own lower().
        if type(name) is not str or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a header name")
        lower = str.lower(name)
        if lower in PORT_HEADERS_NOT_SENT or lower.startswith(PORT_HEADER_PREFIXES_NOT_SENT):
            raise ValueError(f"{name} is never sent on to the sandbox's server (Bay drops it)")
        if type(value) is not str:
            raise ValueError(f"the value of {name} is not a str")
        out[name] = _check_header(name, value)
    return out


def _query_pairs(query: Optional[Query]) -> List[Tuple[str, str]]:
    """A query (Bay's, or a port call's for the sandbox's server) as the pairs to encode."""
    if query is None:
        return []
    if isinstance(query, (str, bytes)):
        raise ValueError("query= takes a mapping or (name, value) pairs, not a string")
    try:
        pairs = list(query.items() if isinstance(query, Mapping) else query)
    except TypeError:
        raise ValueError("query= takes a mapping or (name, value) pairs") from None
    out = []
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2 or not isinstance(pair[0], str):
            raise ValueError(f"{pair!r} is not a (name, value) pair")
        name, value = pair
        # A list repeats the name; None is not sent; a bool is sent as Bay's own queries send it.
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is None:
                continue
            if not isinstance(v, _QUERY_SCALARS):
                raise ValueError(f"the query value of {name} is a {type(v).__name__}, not a str, number or bool")
            out.append((name, _query_text(v)))
    return out


def _query_text(v: Any) -> str:
    """A query value as Bay's own parsers read it: bools in lower case, a whole float as an integer."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _gone(raw: bytes, path: str) -> bool:
    """Whether Bay's error body says that the resource `path` ends with does not exist:
    `not_found` naming its kind and that id (a path no route has answers without them)."""
    try:
        error = json.loads(raw).get("error")
        details = error.get("details")
        return (error.get("code") == "not_found" and isinstance(details, dict) and isinstance(details.get("kind"), str)
                and details.get("id") == urllib.parse.unquote(path.rsplit("/", 1)[-1]))
    except (ValueError, AttributeError, TypeError, RecursionError):
        return False


def _body_length(body: BinaryIO) -> Optional[int]:
    """The bytes left in a file body, when they can be known without reading it (then it is
    sent with a Content-Length, not chunked, which some servers in a sandbox cannot read)."""
    try:
        st = os.fstat(body.fileno())
        if stat.S_ISREG(st.st_mode):
            return max(0, st.st_size - body.tell())
    except (AttributeError, OSError, ValueError):
        pass
    try:
        if body.seekable():
            here = body.tell()
            end = body.seek(0, os.SEEK_END)
            body.seek(here)
            return max(0, end - here)
    except (AttributeError, OSError, ValueError):
        pass
    return None


class Transport:
    def __init__(self, base_url: str, token: Optional[str] = None, owner: Optional[str] = None,
                 timeout: float = 330.0, max_answer_bytes: int = 64 << 20,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        if url.username or url.password or url.query or url.fragment:
            raise ValueError("base_url takes no credentials, query or fragment (pass token=)")
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ValueError("ssl_context= takes an ssl.SSLContext")
        if ssl_context is not None and (ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname):
            # A bare SSLContext(PROTOCOL_TLS) with a CA loaded checks nothing: taken, it would
            # look like "trust my CA" while trusting any certificate for any name.
            raise ValueError("ssl_context= must check certificates and host names (verify_mode CERT_REQUIRED, "
                             "check_hostname on): use ssl.create_default_context(cafile=...)")
        if ssl_context is not None and url.scheme != "https":
            # Silently unused, it would leave the caller believing the connection is checked.
            raise ValueError("ssl_context= needs an https base_url")
        self._https = url.scheme == "https"
        self._ssl = ssl_context
        self._host = url.hostname
        self._port = url.port
        self._prefix = urllib.parse.quote(url.path.rstrip("/"), safe="/%")
        self._timeout = timeout
        self._max = max_answer_bytes
        self._headers = {"User-Agent": "bay-python-client"}
        if token:
            self._headers["Authorization"] = _check_header("token", f"Bearer {token}")
        if owner:
            self._headers["X-Owner"] = _check_header("owner", owner)
        self._local = threading.local()

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout, context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def _kept(self) -> Optional[http.client.HTTPConnection]:
        """This thread's kept connection; none in a forked child (the parent's socket is the parent's)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) != os.getpid():
            # Closes this process's copy of the descriptor only (no shutdown): the parent's stays open.
            conn.close()
            self._local.conn = None
            return None
        return conn

    def close(self) -> None:
        conn = self._kept()
        if conn is not None:
            conn.close()
        self._local.conn = None

    def _request(self, method: str, path: str, query: Optional[Dict[str, Any]], headers: Dict[str, Optional[str]],
                 json_body: Any, data: Optional[Body], accept: str,
                 port_query: Optional[Query] = None, port_headers: Optional[Mapping[str, str]] = None):
        pairs = _query_pairs(query) + _query_pairs(port_query)
        target = self._prefix + path + (f"?{urllib.parse.urlencode(pairs)}" if pairs else "")
        h = dict(self._headers)
        h["Accept"] = accept
        h.update({k: _check_header(k, v) for k, v in headers.items() if v is not None})
        body: Optional[Body] = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            h["Content-Type"] = "application/json"
        elif data is not None:
            body = data
            h["Content-Type"] = "application/octet-stream"
            if not isinstance(data, (bytes, bytearray, memoryview)):
                length = _body_length(data)
                if length is not None:
                    h["Content-Length"] = str(length)
        # A port call's own headers come last: its Accept and Content-Type are the server's business.
        extra = _port_headers(port_headers)
        for name in extra:
            for mine in [k for k in h if k.lower() == name.lower()]:
                del h[mine]
        h.update(extra)
        return target, h, body

    def _send(self, method: str, target: str, h: Dict[str, str], body: Optional[Body]):
        """Sends on this thread's kept connection: (it, the answer's head, whether it was
        sent a second time because the connection closed as it went)."""
        conn = self._kept()
        if conn is not None and _dropped(conn):
            conn.close()
            conn = None
        fresh = conn is None
        for attempt in (1, 2):
            if conn is None:
                conn = self._local.conn = self._connect()
                self._local.pid = os.getpid()
            try:
                conn.request(method, target, body=body, headers=h)
                return conn, conn.getresponse(), attempt == 2
            except _STALE:
                self.close()
                conn = None
                # Sent again only when running it twice is harmless: Bay may have run it.
                if attempt == 2 or fresh or method not in _IDEMPOTENT or not (body is None or isinstance(body, bytes)):
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def _read_all(self, res: http.client.HTTPResponse) -> bytes:
        length = res.getheader("Content-Length")
        if length is not None and _DIGITS.fullmatch(length) and int(length) > self._max:
            raise BayError(res.status, "answer_too_large",
                           f"the answer is {length} bytes, over max_answer_bytes ({self._max}); use a *_to method",
                           None, res.getheader("X-Request-Id"))
        raw = res.read(self._max + 1)
        if len(raw) > self._max:
            raise BayError(res.status, "answer_too_large",
                           f"the answer is over max_answer_bytes ({self._max}); use a *_to method",
                           None, res.getheader("X-Request-Id"))
        return raw

    def call(self, method: str, path: str, *, query: Optional[Dict[str, Any]] = None,
             headers: Optional[Dict[str, Optional[str]]] = None, json_body: Any = None,
             data: Optional[Body] = None, expect: str = "json",
             port_query: Optional[Query] = None, port_headers: Optional[Mapping[str, str]] = None) -> Any:
        """One request; `expect` is how a 2xx body is read: json, text, bytes, port or empty.
        `port_query` and `port_headers` are a port call's own, for the sandbox's server."""
        target, h, body = self._request(method, path, query, headers or {}, json_body, data,
                                        "application/json" if expect == "json" else "*/*", port_query, port_headers)
        _, res, resent = self._send(method, target, h, body)
        try:
            raw = self._read_all(res)
        except BaseException:
            # The rest of this answer is still on the connection: it cannot carry the next request.
            self.close()
            raise
        if res.will_close:
            self.close()
        if expect == "port":
            if res.getheader("X-Bay-Upstream") is None:
                if 200 <= res.status < 300:
                    raise bad_answer(res.status, res.headers, "a port call was answered by Bay, not by the sandbox's server")
                raise error_of(res.status, res.reason, res.headers, raw)
            return PortAnswer(res.status, {k.lower(): v for k, v in res.getheaders()}, raw)
        if resent and method == "DELETE" and expect == "empty" and res.status == 404 and _gone(raw, path):
            # The first DELETE may have been done before its connection closed: what it
            # asked for holds (the sandbox, workspace or context is gone), so it answers
            # as that delete does (a delete that answers a body still raises). It may as
            # well never have reached Bay (an id that never was): the two cannot be told apart.
            return None
        if not 200 <= res.status < 300:
            raise error_of(res.status, res.reason, res.headers, raw)
        if res.status == 204 or expect == "empty":
            return None
        if expect == "json":
            try:
                return json.loads(raw) if raw else None
            except (ValueError, RecursionError):
                raise bad_answer(res.status, res.headers, f"the answer is not JSON: {raw[:200]!r}")
        if expect == "text":
            return raw.decode("utf-8", "replace")
        return raw

    def _dedicated(self, method: str, path: str, query: Optional[Dict[str, Any]],
                   headers: Optional[Dict[str, Optional[str]]], json_body: Any, accept: str):
        """A request on a connection of its own (a stream, a download written as it comes)."""
        target, h, body = self._request(method, path, query, headers or {}, json_body, None, accept)
        conn = self._connect()
        try:
            conn.request(method, target, body=body, headers=h)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def copy_to(self, out: BinaryIO, method: str, path: str, *, query: Optional[Dict[str, Any]] = None,
                headers: Optional[Dict[str, Optional[str]]] = None) -> int:
        """A 2xx answer's body written to `out` in chunks, on a connection of its own; the bytes written."""
        conn, res = self._dedicated(method, path, query, headers, None, "*/*")
        try:
            if not 200 <= res.status < 300:
                raise error_of(res.status, res.reason, res.headers, res.read(64 << 10))
            written = 0
            for chunk in iter(lambda: res.read(_CHUNK), b""):
                out.write(chunk)
                written += len(chunk)
            return written
        finally:
            conn.close()

    def events(self, method: str, path: str, *, query: Optional[Dict[str, Any]] = None,
               headers: Optional[Dict[str, Optional[str]]] = None, json_body: Any = None) -> EventStream:
        """A text/event-stream answer as an EventStream, on a connection of its own: sent now
        (a refusal raises here), closed when the iteration ends, on close(), or when the
        stream is dropped (Bay then interrupts a streamed run)."""
        conn, res = self._dedicated(method, path, query, headers, json_body, "text/event-stream")
        try:
            if not 200 <= res.status < 300:
                raise error_of(res.status, res.reason, res.headers, res.read(64 << 10))
            return EventStream(conn, res, self._max)
        except BaseException:
            conn.close()
            raise
