"""A text/event-stream body as Events (what Bay's streamed calls answer)."""

import json
import re
from typing import Any, Iterable, Iterator, NamedTuple

from ._errors import BayError

_EOL = re.compile(rb"\r\n|\r|\n")


class Event(NamedTuple):
    """One server-sent event: its name (`stdout`, `result`, `error`, ...) and its JSON data."""

    event: str
    data: Any


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines ended by CRLF, LF or CR (the event-stream format allows all three)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        # A CR at the end may be the first half of a CRLF: held until the next chunk.
        held = pending.endswith(b"\r")
        parts = _EOL.split(pending[:-1] if held else pending)
        pending = parts.pop() + (b"\r" if held else b"")
        for p in parts:
            yield p.decode("utf-8", "replace")
    if pending:
        yield pending.rstrip(b"\r").decode("utf-8", "replace")


def events(chunks: Iterable[bytes], status: int, request_id: Any) -> Iterator[Event]:
    """The events of the stream; a data payload that is not JSON raises BayError(`bad_answer`)."""
    name, data = "message", []
    for line in _lines(chunks):
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    payload = json.loads(text)
                except (ValueError, RecursionError):
                    raise BayError(status, "bad_answer", f"an event's data is not JSON: {text[:200]!r}", None, request_id)
                yield Event(name, payload)
            name, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
