"""The Python client against a real Bay (started by first-session.test.ts): the
README's first session, streamed runs, bytes both ways, the error model, and the
hostile cases (another tenant's ids, ids that try to reach another route, a client
that leaves a streamed run). Exits 0 and prints "first session: ok" when all hold."""

import hashlib
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bay_client import BayClient, BayError, Event  # noqa: E402
from bay_client._transport import _dropped  # noqa: E402

URL = os.environ["BAY_URL"]
alice = BayClient(URL, token=os.environ["ALICE_KEY"])
bob = BayClient(URL, token=os.environ["BOB_KEY"])


def refused(want_code, want_status, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except BayError as e:
        assert (e.code, e.status) == (want_code, want_status), f"{fn.__name__}: {e.status} {e.code} {e.message}"
        assert e.request_id, "an error names its request id"
        return e
    raise AssertionError(f"{fn.__name__} succeeded; expected {want_status} {want_code}")


assert alice.get_health()["status"] == "healthy"

# Create (safe to retry with the same Idempotency-Key), Python, shell.
sb = alice.create_sandbox(idempotency_key="py-client-first", ttl=600)
assert alice.create_sandbox(idempotency_key="py-client-first", ttl=600)["id"] == sb["id"]
sid = sb["id"]
run = alice.exec_python(sid, code="x = 21\nx * 2")
assert (run["success"], run["output"]) == (True, "42\n"), run
assert run["data"] == [{"type": "execute_result", "data": {"text/plain": "42"}}], run
sh = alice.exec_shell(sid, command="printf abc; echo oops >&2; exit 3")
assert (sh["success"], sh["exit_code"], sh["output"], sh["error"]) == (False, 3, "abc", "oops\n"), sh

# A streamed run: output as it comes, then the result.
events = list(alice.exec_python_events(sid, code="print('hi', flush=True)\nx"))
assert all(isinstance(e, Event) for e in events)
assert events[0] == Event("stdout", {"text": "hi\n"}), events
assert events[-1].event == "result" and events[-1].data["output"] == "hi\n21\n", events

# Bytes both ways: every byte value, an odd path, an empty file, a file object.
blob = bytes(range(256)) * 4
up = alice.upload_file(sid, path="data/ü b#?.bin", data=blob)
assert up == {"status": "ok", "path": "data/ü b#?.bin", "size": 1024}, up
assert alice.download_file(sid, path="data/ü b#?.bin") == blob
assert alice.upload_file(sid, path="empty.bin", data=b"")["size"] == 0
assert alice.download_file(sid, path="empty.bin") == b""
with open(__file__, "rb") as f:
    assert alice.upload_file(sid, path="me.py", data=f)["size"] == os.path.getsize(__file__)
assert alice.read_file(sid, path="me.py")["content"].startswith('"""The Python client')
# A download written to a file as it comes (8 MiB, compared by digest).
digest = alice.exec_shell(sid, command="head -c 8388608 /dev/urandom > big.bin && sha256sum big.bin | cut -c1-64")["output"].strip()
with tempfile.TemporaryFile() as f:
    assert alice.download_file_to(sid, path="big.bin", out=f) == 8388608
    f.seek(0)
    assert hashlib.sha256(f.read()).hexdigest() == digest
    refused("file_not_found", 404, alice.download_file_to, sid, path="nope.bin", out=f)
alice.delete_file(sid, path="big.bin")
names = {e["name"] for e in alice.list_directory(sid, path="data")["entries"]}
assert names == {"ü b#?.bin"}, names

# The error model: codes and details.
e = refused("file_not_found", 404, alice.read_file, sid, path="nope.txt")
assert e.details.get("path") == "nope.txt", e.details
refused("validation_error", 400, alice.exec_python, sid, code="1", timeout=0)
refused("invalid_path", 400, alice.read_file, sid, path="../etc/passwd")
with BayClient(URL, token="not-a-key-0123456789abcdef") as stranger:
    refused("unauthorized", 401, stranger.list_sandboxes)

# Another tenant sees nothing of it; an id cannot reach another route.
refused("not_found", 404, bob.get_sandbox, sid)
refused("not_found", 404, bob.exec_python, sid, code="1")
refused("not_found", 404, bob.exec_python_events, sid, code="1")  # a stream is refused at the call
refused("not_found", 404, bob.download_file, sid, path="data/ü b#?.bin")
assert sid not in {s["id"] for s in bob.list_sandboxes()["items"]}
for odd in ["../sandboxes", f"{sid}/../{sid}", "%2e%2e", f"{sid}?x=1", f"{sid}#frag"]:
    refused("not_found", 404, alice.get_sandbox, odd)

# Arguments that would reach another route, or split a header, never leave the client.
for bad_id in ["", ".", ".."]:
    try:
        alice.get_sandbox(bad_id)
        raise AssertionError(f"get_sandbox({bad_id!r}) was sent")
    except ValueError:
        pass
for bad_path in ["../../../sandboxes", "a/../../x", "./x", ".."]:
    try:
        alice.port_get(sid, "8080", bad_path)
        raise AssertionError(f"port_get(path={bad_path!r}) was sent")
    except ValueError:
        pass
for bad_header in ["a\r\nX-Owner: py-bob", "a\r\n b", "a\x00b", "\u20ac"]:
    try:
        alice.get_sandbox(sid, request_id=bad_header)
        raise AssertionError(f"request_id={bad_header!r} was sent")
    except ValueError:
        pass
assert alice.get_sandbox(sid, request_id="trace.1")["id"] == sid

# A background command asked for as a stream answers one JSON body: one result event.
started = list(alice.exec_shell_events(sid, command="sleep 1", background=True))
assert [e.event for e in started] == ["result"] and started[0].data["process_id"], started

# A server in the sandbox, reached through the port proxy with its own query string
# and headers: it answers what it was sent, as JSON.
ECHO = """import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.dumps({"method": self.command, "target": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                           "body": self.rfile.read(n).decode()}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""
alice.upload_file(sid, path="echo_server.py", data=ECHO.encode())
alice.exec_shell(sid, command="python3 echo_server.py 8080", background=True)
deadline = time.monotonic() + 30
while True:
    try:
        got = alice.port_get(sid, "8080", "a/b c", query={"q": "x y&z", "n": [1, 2]})
        break
    except BayError as e:
        assert e.details.get("reason") == "port_closed" and time.monotonic() < deadline, e
        time.sleep(0.2)
seen = json.loads(got.body)
assert (got.status, seen["method"], seen["target"]) == (201, "GET", "/a/b%20c?q=x+y%26z&n=1&n=2"), (got.status, seen)
assert "authorization" not in seen["headers"], seen
seen = json.loads(alice.port_get(sid, "8080", "", query=[("z", "1"), ("a", "é")]).body)
assert seen["target"] == "/?z=1&a=%C3%A9", seen
got = alice.port_post(sid, "8080", "api", data=b'{"k": 1}', headers={"Content-Type": "application/json", "X-Trace": "t 1"})
seen = json.loads(got.body)
assert (seen["method"], seen["body"], seen["headers"]["content-type"], seen["headers"]["x-trace"]) == (
    "POST", '{"k": 1}', "application/json", "t 1"), seen
assert got.headers["x-bay-upstream"] == "201", got.headers
# A file body goes with its length, not chunked (which this server, like many, cannot read).
with tempfile.TemporaryFile() as f:
    f.write(b"from a file")
    f.seek(0)
    seen = json.loads(alice.port_post(sid, "8080", "f", data=f).body)
assert (seen["body"], seen["headers"].get("content-length"), seen["headers"].get("transfer-encoding")) == ("from a file", "11", None), seen
for bad in [{"Authorization": "Bearer x"}, {"x-owner": "py-bob"}, {"Host": "bay"}, {"Cookie": "a=b"}, {"bad name": "v"},
            {"X-A": "a\r\nX-Owner: py-bob"}, {"X-A": 1}, {"": "v"}]:
    try:
        alice.port_get(sid, "8080", "", headers=bad)
        raise AssertionError(f"port_get(headers={bad!r}) was sent")
    except ValueError:
        pass
try:
    alice.port_get(sid, "8080", "", query="a=b")
    raise AssertionError("a query string given as a str was sent")
except ValueError:
    pass

# An answer over max_answer_bytes is refused, not held in memory.
with BayClient(URL, token=os.environ["ALICE_KEY"], max_answer_bytes=1000) as small:
    refused("answer_too_large", 200, small.download_file, sid, path="data/ü b#?.bin")

# A forked child gets its own connection: each side reads only its own answers.
alice.get_sandbox(sid)
child = os.fork()
if child == 0:
    ok = all(alice.exec_python(sid, code="'child'")["output"] == "'child'\n" for _ in range(15))
    os._exit(0 if ok else 1)
parent_ok = all(alice.list_profiles()["items"] for _ in range(15))
_, status = os.waitpid(child, 0)
assert parent_ok and os.WEXITSTATUS(status) == 0, status

# A client that leaves a streamed run: Bay interrupts it, and the kernel answers the next.
stream = alice.exec_python_events(sid, code="import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.05)")
first = next(iter(stream))
assert first.event == "stdout", first
stream.close()
time.sleep(1)
after = alice.exec_python(sid, code="i")
assert after["success"] and int(after["output"]) < 599, after
# The same for one that is dropped: nothing refers to it, so its connection closes.
stream = alice.exec_python_events(sid, code="import time\nfor j in range(600):\n    print(j, flush=True)\n    time.sleep(0.05)")
assert next(stream).event == "stdout"
del stream
time.sleep(1)
after = alice.exec_python(sid, code="j")
assert after["success"] and int(after["output"]) < 599, after

# Bay closes a connection idle past server.idle_timeout (1 s here): the next call,
# a POST that must not be sent twice, goes on a new connection.
kept = alice._t._local.conn
deadline = time.monotonic() + 30
while not _dropped(kept) and time.monotonic() < deadline:
    time.sleep(0.2)
assert _dropped(kept), "Bay kept an idle connection open past its idle timeout"
assert alice.exec_python(sid, code="x")["output"] == "21\n"
assert alice._t._local.conn is not kept

alice.delete_sandbox(sid)
refused("not_found", 404, alice.get_sandbox, sid)
alice.close()
bob.close()
print("first session: ok")
