"""The Python client's parsing on its own (no Bay): event streams cut anywhere and
with any line ending, data that is not JSON, Retry-After in both forms, error bodies
that are not Bay's. Exits 0 and prints "units: ok" when all hold."""

import email.utils
import os
import socket
import sys
import threading
import time

# BAY_CLIENT_INSTALLED=1 (packaging.py): the copy pip installed, not the source folder.
INSTALLED = os.environ.get("BAY_CLIENT_INSTALLED") == "1"
if not INSTALLED:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bay_client import BayClient, BayError, Event  # noqa: E402
from bay_client._errors import error_of, retry_after  # noqa: E402
from bay_client._sse import events  # noqa: E402
from bay_client._transport import _body_length, _port_headers, _query_pairs, rest_of_path, segment  # noqa: E402

stream = b'event: stdout\r\ndata: {"text": "a"}\r\n\r\n: ping\n\nevent: result\rdata:{"ok":\rdata: true}\r\r'
want = [Event("stdout", {"text": "a"}), Event("result", {"ok": True})]
for size in range(1, len(stream) + 1):
    chunks = [stream[i:i + size] for i in range(0, len(stream), size)]
    got = list(events(chunks, 200, None, 1 << 20))
    assert got == want, (size, got)
assert list(events([b'data:  "x"\n\n'], 200, None, 100)) == [Event("message", "x")]
for bad in [b"data: nope\n\n", b"data:\n\n", b"data: [\n\n", b"data: " + b"[" * 100000 + b"\n\n"]:
    try:
        list(events([bad], 200, "rid", 1 << 20))
        raise AssertionError(f"{bad!r} was taken")
    except BayError as e:
        assert (e.code, e.request_id) == ("bad_answer", "rid"), e

assert retry_after("3") == 3.0 and retry_after("1.5") == 1.5
assert retry_after("\u00b2") is None and retry_after("-1") is None and retry_after("soon") is None and retry_after(None) is None
later = email.utils.formatdate(time.time() + 30, usegmt=True)
assert 25 <= retry_after(later) <= 31, retry_after(later)
assert retry_after(email.utils.formatdate(time.time() - 30, usegmt=True)) == 0.0

headers = {"Retry-After": "2", "X-Request-Id": "rid"}
e = error_of(429, "Too Many Requests", headers, b'{"error":{"code":"rate_limited","message":"slow down","details":{"n":1},"request_id":"r1"}}')
assert (e.status, e.code, e.message, e.details, e.request_id, e.retry_after) == (429, "rate_limited", "slow down", {"n": 1}, "r1", 2.0)
for raw in [b"<html>bad gateway</html>", b"", b"[" * 100000 + b"]" * 100000, b'{"error": 5}', b'{"error": {"code": "x"}}']:
    e = error_of(502, "Bad Gateway", headers, raw)
    assert (e.status, e.code, e.request_id) == (502, "http_error", "rid"), (raw[:20], e)

for bad in ["", ".", ".."]:
    try:
        segment(bad)
        raise AssertionError(bad)
    except ValueError:
        pass
assert segment("a/b?c#d%") == "a%2Fb%3Fc%23d%25" and segment("...") == "..."
assert rest_of_path("api/v1/x y") == "api/v1/x%20y" and rest_of_path("") == "" and rest_of_path("a/.../b") == "a/.../b"
for bad in ["..", "a/..", "./a", "a/./b", "a/../../b"]:
    try:
        rest_of_path(bad)
        raise AssertionError(bad)
    except ValueError:
        pass
# A query: None is not sent, a bool as Bay sends one, a list repeats its name, pairs keep
# their order; anything else is refused before sending.
assert _query_pairs({"a": None, "b": True, "c": [1, "x", None], "d": 1.5}) == [("b", "true"), ("c", "1"), ("c", "x"), ("d", "1.5")]
assert _query_pairs([("z", "1"), ("a", False)]) == [("z", "1"), ("a", "false")] and _query_pairs({}) == _query_pairs(None) == []
assert _query_pairs({"limit": 5.0, "x": 0.5}) == [("limit", "5"), ("x", "0.5")]  # a whole float reads as an integer
for bad in ["a=b", "", b"a=b", {"a": {"k": 1}}, {"a": [[1]]}, [("a",)], [(1, "x")], ["ab"], 5, {"a": object()}]:
    try:
        _query_pairs(bad)
        raise AssertionError(f"query={bad!r} was taken")
    except ValueError:
        pass
# Port call headers: what Bay never sends on is refused (whatever its case, whatever a
# str subclass says it lowers to), as is what a header cannot carry.


class Sly(str):
    def lower(self):
        return "x-harmless"


assert _port_headers({"Content-Type": "application/json", "X-Trace": ""}) == {"Content-Type": "application/json", "X-Trace": ""}
for bad in [{"Cookie": "a=b"}, {"X-Forwarded-For": "1.2.3.4"}, {"E2B-Thing": "x"}, {"x-bay-upstream": "1"}, {"AUTHORIZATION": "x"},
            {Sly("Authorization"): "Bearer other"}, {"Trailers": "x"}, {"Via": "x"}, {"a b": "x"}, {"X-A": "a\nb"}, {"X-A": b"x"},
            {b"X-A": "x"}, [("X-A", "x")], "X-A: x"]:
    try:
        _port_headers(bad)
        raise AssertionError(f"headers={bad!r} was taken")
    except ValueError:
        pass
# A file body's length is known when it can be without reading it (then no chunking).
import io  # noqa: E402
import tempfile  # noqa: E402

with tempfile.TemporaryFile() as f:
    f.write(b"x" * 1000)
    f.seek(10)
    assert _body_length(f) == 990 and f.tell() == 10
buf = io.BytesIO(b"hello")
buf.read(1)
assert _body_length(buf) == 4 and buf.tell() == 1
r, w = os.pipe()
with os.fdopen(r, "rb") as pipe, os.fdopen(w, "wb"):
    assert _body_length(pipe) is None
# An answer cut off mid-body (a timeout) leaves no half-read connection behind: the
# next call goes on a new one and reads its own answer, not the rest of the last.
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
seen = []


def serve():
    first, _ = server.accept()
    seen.append(first.recv(65536).split(b"\r\n")[0])
    first.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"rest\": ")
    second, _ = server.accept()
    seen.append(second.recv(65536).split(b"\r\n")[0])
    second.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"own": 1}\n')
    time.sleep(0.2)
    first.close()
    second.close()


threading.Thread(target=serve, daemon=True).start()
with BayClient(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.5) as c:
    try:
        c.get_sandbox("sb-1")
        raise AssertionError("a cut answer was taken")
    except (TimeoutError, socket.timeout):  # one class from Python 3.10
        pass
    assert c.get_sandbox("sb-2") == {"own": 1}
assert seen == [b"GET /v1/sandboxes/sb-1 HTTP/1.1", b"GET /v1/sandboxes/sb-2 HTTP/1.1"], seen
server.close()
# A streamed call is sent when called (a refusal raises there, before any iteration);
# its connection closes when the stream ends, on close(), or when it is dropped.
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
log = []
STREAM = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nevent: stdout\ndata: {\"text\": \"a\"}\n\n"


def serve_streams():
    for answer in [None, STREAM, STREAM, STREAM, STREAM]:
        conn, _ = server.accept()
        log.append(("request", conn.recv(65536).split(b"\r\n")[0]))
        if answer is None:
            body = b'{"error":{"code":"not_found","message":"no","details":{}}}'
            answer = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        conn.sendall(answer)
        conn.settimeout(5)
        try:
            while conn.recv(65536):  # the rest of the request (its body may come apart from its head)
                pass
            log.append(("closed", True))
        except socket.timeout:
            log.append(("closed", False))
        conn.close()


def wait_log(n):
    deadline = time.monotonic() + 5
    while len(log) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return log[:n]


threading.Thread(target=serve_streams, daemon=True).start()
with BayClient(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=5) as c:
    try:
        c.exec_python_events("sb-1", code="1")
        raise AssertionError("a refused stream did not raise at the call")
    except BayError as e:
        assert (e.status, e.code) == (404, "not_found"), e
    assert wait_log(2) == [("request", b"POST /v1/sandboxes/sb-1/python/exec HTTP/1.1"), ("closed", True)], log
    held = c.exec_python_events("sb-2", code="1")
    assert wait_log(3)[2] == ("request", b"POST /v1/sandboxes/sb-2/python/exec HTTP/1.1"), log
    assert next(held) == Event("stdout", {"text": "a"}) and not held.closed
    held.close()
    held.close()
    assert held.closed and list(held) == [] and wait_log(4)[3] == ("closed", True), log
    with c.exec_python_events("sb-3", code="1") as inside:
        assert next(inside).event == "stdout"
    assert wait_log(6)[5] == ("closed", True), log
    # Closed from another thread while one waits for the next event: the reader ends, Bay sees the close.
    waiting = c.exec_python_events("sb-5", code="1")
    assert next(waiting).event == "stdout"
    ended = []
    reader = threading.Thread(target=lambda: ended.append(list(waiting)))
    reader.start()
    time.sleep(0.2)
    waiting.close()
    reader.join(5)
    assert not reader.is_alive() and ended == [[]], ended
    assert wait_log(8)[7] == ("closed", True), log
    dropped = c.exec_python_events("sb-4", code="1")
    assert wait_log(9)[8] == ("request", b"POST /v1/sandboxes/sb-4/python/exec HTTP/1.1"), log
    del dropped
    assert wait_log(10)[9] == ("closed", True), log
server.close()
# A long line is refused past the limit, and one under it is read whole.
line = b"data: " + b"x" * (8 << 20)
try:
    list(events((line[i:i + 65536] for i in range(0, len(line), 65536)), 200, "rid", 4 << 20))
    raise AssertionError("an 8 MiB line was taken under a 4 MiB limit")
except BayError as e:
    assert e.code == "answer_too_large", e
big = b'data: "' + b"y" * (8 << 20) + b'"\n\n'
got = list(events((big[i:i + 65536] for i in range(0, len(big), 65536)), 200, None, 16 << 20))
assert len(got) == 1 and len(got[0].data) == 8 << 20
if INSTALLED:
    import bay_client  # noqa: E402

    source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert not os.path.abspath(bay_client.__file__).startswith(source + os.sep), bay_client.__file__
print("units: ok (installed)" if INSTALLED else "units: ok")
