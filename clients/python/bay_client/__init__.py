"""Bay's Python client: the standard library only, its operations generated from
openapi/bay.v1.yaml (`bun run gen`).

    from bay_client import BayClient, BayError

    bay = BayClient("http://127.0.0.1:8000", token=os.environ["BAY_API_KEY"])
    sb = bay.create_sandbox()
    print(bay.exec_python(sb["id"], code="x = 21\\nx * 2")["output"])  # 42
"""

import ssl
from typing import Any, Optional

from ._operations import Operations
from ._errors import BayError
from ._sse import Event
from ._stream import EventStream
from ._transport import PortAnswer, Transport

__all__ = ["BayClient", "BayError", "Event", "EventStream", "PortAnswer"]

# The package's version and summary (read by _build/bay_build.py for the wheel's METADATA).
__version__ = "0.1.0"
__summary__ = "Bay's Python client: sandboxes for AI agents, the standard library only"


class BayClient(Operations):
    """A Bay at `base_url`; `token` is an API key (sent as a Bearer token), `owner` the
    X-Owner a trusted front end names; `timeout` is the socket's, in seconds (an exec
    may run 300 s); an answer read whole (not by a `*_to` or `*_events` method) larger
    than `max_answer_bytes` raises BayError `answer_too_large`; `ssl_context` (an https
    `base_url` only) is the TLS context connections are checked with, e.g. one trusting
    a private CA (by default, the system's CAs and hostname checks). One kept-alive
    connection per thread and process; streamed calls and `*_to` get their own."""

    def __init__(self, base_url: str, token: Optional[str] = None, owner: Optional[str] = None,
                 timeout: float = 330.0, max_answer_bytes: int = 64 << 20,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self._t = Transport(base_url, token=token, owner=owner, timeout=timeout, max_answer_bytes=max_answer_bytes,
                            ssl_context=ssl_context)

    def close(self) -> None:
        """Closes this thread's connection (the next call opens another)."""
        self._t.close()

    def __enter__(self) -> "BayClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
