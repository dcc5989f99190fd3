"""BayError, and how an answer that is not a success becomes one."""

import email.utils
import json
import re
import time
from typing import Any, Dict, Optional

_SECONDS = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,6})?$")


class BayError(Exception):
    """Bay's error body (`{"error": {code, message, details, request_id}}`) and its status.

    `code` is one of the spec's error codes (`not_found`, `validation_error`,
    `file_not_found`, ...); `retry_after` is Retry-After's seconds on a 429 or 503.
    An answer that is not Bay's body has the code `http_error`; a success whose body
    cannot be read as the spec says, `bad_answer`; one bigger than the client's
    `max_answer_bytes`, `answer_too_large`."""

    def __init__(self, status: int, code: str, message: str, details: Optional[Dict[str, Any]] = None,
                 request_id: Optional[str] = None, retry_after: Optional[float] = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.request_id = request_id
        self.retry_after = retry_after


def retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS.match(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when is not None else None


def error_of(status: int, reason: str, headers: Any, raw: bytes) -> BayError:
    """The BayError for a failed answer: Bay's error body, or the start of whatever came."""
    wait = retry_after(headers.get("Retry-After"))
    try:
        e = json.loads(raw)["error"]
        details = e.get("details")
        return BayError(status, str(e["code"]), str(e["message"]), details if isinstance(details, dict) else None,
                        e.get("request_id") if isinstance(e.get("request_id"), str) else headers.get("X-Request-Id"), wait)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        text = raw[:500].decode("utf-8", "replace")
        return BayError(status, "http_error", text or reason, None, headers.get("X-Request-Id"), wait)


def bad_answer(status: int, headers: Any, why: str) -> BayError:
    return BayError(status, "bad_answer", why, None, headers.get("X-Request-Id"))
