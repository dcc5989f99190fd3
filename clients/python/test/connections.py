"""The Python client's connections on their own (no Bay, a scripted server): a DELETE
sent again after its connection closed, and TLS with a caller's context. Exits 0 and
prints "connections: ok" when all hold."""

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bay_client import BayClient, BayError  # noqa: E402

GONE = b'{"error":{"code":"not_found","message":"sandbox not found: sb-1","details":{"kind":"sandbox","id":"sb-1"}}}'
NO_ROUTE = b'{"error":{"code":"not_found","message":"no route for DELETE /v1/x","details":{}}}'


def answer(status: bytes, body: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)


def scripted(steps):
    """A server that takes one connection per step: (answers for its requests, in order,
    None for "close without answering"); the request lines it read, in order."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    seen = []

    def run():
        for answers in steps:
            conn, _ = server.accept()
            with conn:
                for a in answers:
                    seen.append(conn.recv(65536).split(b"\r\n")[0])
                    if a is None:
                        break
                    conn.sendall(a)
        server.close()

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}", seen


# A DELETE whose connection closes as it goes is sent once more; a 404 for the resource
# then means the first was done: it answers as the delete does.
url, seen = scripted([[answer(b"200 OK", b'{"id":"sb-1"}'), None], [answer(b"404 Not Found", GONE)]])
with BayClient(url, timeout=5) as c:
    assert c.get_sandbox("sb-1") == {"id": "sb-1"}
    assert c.delete_sandbox("sb-1") is None
assert seen == [b"GET /v1/sandboxes/sb-1 HTTP/1.1", b"DELETE /v1/sandboxes/sb-1 HTTP/1.1",
                b"DELETE /v1/sandboxes/sb-1 HTTP/1.1"], seen
# Sent once, a 404 is the caller's to know: the sandbox never was (a typo, another tenant's).
url, seen = scripted([[answer(b"404 Not Found", GONE)]])
with BayClient(url, timeout=5) as c:
    try:
        c.delete_sandbox("sb-1")
        raise AssertionError("a DELETE sent once took a 404 as done")
    except BayError as e:
        assert (e.status, e.code) == (404, "not_found"), e
# Sent again, a 404 that is not that resource's (no route, another id, details that are
# not Bay's) still raises.
for other in [b'{"error":{"code":"not_found","message":"x","details":{"kind":"sandbox","id":"sb-2"}}}',
              b'{"error":{"code":"not_found","message":"x","details":"kind"}}',
              b'{"error":{"code":"not_found","message":"x","details":["kind"]}}',
              b'{"error":{"code":"not_found","message":"x","details":{"kind":null,"id":"sb-1"}}}']:
    url, seen = scripted([[answer(b"200 OK", b"{}"), None], [answer(b"404 Not Found", other)]])
    with BayClient(url, timeout=5) as c:
        c.get_sandbox("sb-1")
        try:
            c.delete_sandbox("sb-1")
            raise AssertionError(f"{other!r} was taken as a delete done")
        except BayError as e:
            assert (e.status, e.code) == (404, "not_found"), e
url, seen = scripted([[answer(b"200 OK", b"{}"), None], [answer(b"404 Not Found", NO_ROUTE)]])
with BayClient(url, timeout=5) as c:
    c.get_sandbox("sb-1")
    try:
        c.delete_sandbox("sb-1")
        raise AssertionError("a route's 404 was taken as a delete done")
    except BayError as e:
        assert (e.status, e.code, e.details) == (404, "not_found", {}), e

# TLS: a server whose certificate no system CA signed is refused by default, and
# trusted with the caller's context; a context with an http URL is refused outright.
tmp = tempfile.mkdtemp()
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
served.load_cert_chain(cert, key)
tls = socket.socket()
tls.bind(("127.0.0.1", 0))
tls.listen()
port = tls.getsockname()[1]
handshakes = []


def serve_tls():
    for _ in range(2):
        raw, _ = tls.accept()
        try:
            with served.wrap_socket(raw, server_side=True) as conn:
                handshakes.append(True)
                conn.recv(65536)
                conn.sendall(answer(b"200 OK", b'{"status":"ok"}'))
        except (ssl.SSLError, OSError):
            handshakes.append(False)
    tls.close()


threading.Thread(target=serve_tls, daemon=True).start()
with BayClient(f"https://127.0.0.1:{port}", timeout=5) as c:
    try:
        c.get_health()
        raise AssertionError("a certificate no CA signed was trusted by default")
    except ssl.SSLCertVerificationError:
        pass
trusting = ssl.create_default_context(cafile=cert)
with BayClient(f"https://127.0.0.1:{port}", timeout=5, ssl_context=trusting) as c:
    assert c.get_health() == {"status": "ok"}
assert handshakes == [False, True], handshakes
# A context that checks nothing (a bare SSLContext, even with the CA loaded; no host
# name check) is refused: taken, it would trust any certificate.
bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
bare.check_hostname = False
bare.verify_mode = ssl.CERT_NONE
bare.load_verify_locations(cert)
no_names = ssl.create_default_context(cafile=cert)
no_names.check_hostname = False
for bad in [("http://127.0.0.1:1", trusting), ("https://127.0.0.1:1", "no"), ("https://127.0.0.1:1", bare),
            ("https://127.0.0.1:1", no_names), ("https://127.0.0.1:1", ssl._create_unverified_context())]:
    try:
        BayClient(bad[0], ssl_context=bad[1])
        raise AssertionError(f"ssl_context={bad[1]!r} with {bad[0]} was taken")
    except ValueError:
        pass
print("connections: ok")
