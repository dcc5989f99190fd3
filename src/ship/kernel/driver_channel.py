"""Ship's Python kernel driver (driver.py), its protocol channel.

driver.py runs this file first (its path is the driver's first argument), after
importing IPython and before any user code runs. It takes private dups of the
original stdin (requests) and stdout (events) and of stderr (Ship's log), points
fd 0 at /dev/null, and keeps all three from fork children of user code. The
output capture (driver_capture.py) writes its events with `send`.
"""
import json
import os
import sys
import threading
import traceback

# --- protocol channel: private dups of the original stdin/stdout -----------------
proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
_proto_out_fd = os.dup(1)
_log_fd = os.dup(2)
_proto_lock = threading.Lock()
_devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(_devnull, 0)
os.close(_devnull)


def _after_fork_in_child():
    """A fork of user code must not hold (or use) Ship's pipes: point them at /dev/null.

    dup2 rather than close, so the fd numbers stay valid for the objects wrapping them.
    """
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (proto_in.fileno(), _proto_out_fd, _log_fd):
            os.dup2(null, fd)
        os.close(null)
    except Exception:
        pass


os.register_at_fork(after_in_child=_after_fork_in_child)


def _log_uncaught(etype, value, tb):
    """Start-up failures after fd 2 is captured still reach Ship's log."""
    log("driver failed:\n" + "".join(traceback.format_exception(etype, value, tb)))


sys.excepthook = _log_uncaught


def send(obj):
    data = (json.dumps(obj) + "\n").encode()
    view = memoryview(data)
    with _proto_lock:
        while view:
            n = os.write(_proto_out_fd, view)
            view = view[n:]


# Exit status of a kernel whose own code a cell broke (as the JS kernel's self-test uses).
EXIT_BROKEN = 70


def exit_broken(reason):
    """The kernel's own code no longer works: the reason as the last log line, then exit at once."""
    try:
        os.write(_log_fd, ("[ship-kernel] the kernel's own code no longer works (%s)\n" % reason).encode("utf-8", "replace"))
    except BaseException:
        pass
    os._exit(EXIT_BROKEN)


def log(msg):
    try:
        os.write(_log_fd, ("[ship-kernel] %s\n" % msg).encode())
    except OSError:
        pass
