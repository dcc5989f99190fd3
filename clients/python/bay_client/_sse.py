"""A text/event-stream body as Events (what Bay's streamed calls answer)."""

import json
import re
from typing import Any, Iterable, Iterator, List, NamedTuple

from ._errors import BayError

_EOL = re.compile(rb"\r\n|\r|\n")


class Event(NamedTuple):
    """One server-sent event: its name (`stdout`, `result`, `error`, ...) and its JSON data."""

    event: str
    data: Any


def _lines(chunks: Iterable[bytes], limit: int, status: int, request_id: Any) -> Iterator[str]:
    """Lines ended by CRLF, LF or CR (the event-stream format allows all three); each byte is
    looked at once, and a line longer than `limit` raises BayError(`answer_too_large`)."""
    pieces: List[bytes] = []
    size = 0
    after_cr = False
    for chunk in chunks:
        start = 1 if after_cr and chunk.startswith(b"\n") else 0
        after_cr = False
        for end in _EOL.finditer(chunk, start):
            pieces.append(chunk[start:end.start()])
            yield b"".join(pieces).decode("utf-8", "replace")
            pieces, size = [], 0
            start = end.end()
        # A CR that ends the chunk ended a line; a LF starting the next one is its other half.
        after_cr = chunk.endswith(b"\r")
        if start < len(chunk):
            pieces.append(chunk[start:])
            size += len(chunk) - start
            if size > limit:
                raise BayError(status, "answer_too_large", f"an event-stream line is over {limit} bytes", None, request_id)
    if pieces:
        yield b"".join(pieces).decode("utf-8", "replace")


def events(chunks: Iterable[bytes], status: int, request_id: Any, limit: int) -> Iterator[Event]:
    """The events of the stream; a data payload that is not JSON raises BayError(`bad_answer`),
    one over `limit` bytes BayError(`answer_too_large`)."""
    name, data, size = "message", [], 0
    for line in _lines(chunks, limit, status, request_id):
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    payload = json.loads(text)
                except (ValueError, RecursionError):
                    raise BayError(status, "bad_answer", f"an event's data is not JSON: {text[:200]!r}", None, request_id)
                yield Event(name, payload)
            name, data, size = "message", [], 0
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
            size += len(value)
            if size > limit:
                raise BayError(status, "answer_too_large", f"an event's data is over {limit} bytes", None, request_id)
