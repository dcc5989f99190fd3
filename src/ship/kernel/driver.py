"""Ship's Python kernel driver.

One long-lived process holding an IPython InteractiveShell. Ship sends one JSON
request per line on stdin and reads one JSON reply per line on a private copy of
the original stdout. fd 0 is then pointed at /dev/null and fds 1 and 2 at a pipe
drained by a thread, so anything user code prints (including subprocesses writing
to the inherited fds) is captured and can never corrupt the protocol.
"""
import json
import os
import signal
import sys
import threading
import traceback
import warnings

MAX_OUTPUT = int(os.environ.get("SHIP_MAX_OUTPUT_BYTES", str(1024 * 1024)))
MARK = ("\x00ship-end-%s\x00" % os.urandom(8).hex()).encode()

# --- protocol channel: private dups of the original stdin/stdout -----------------
_proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
_proto_out_fd = os.dup(1)
_log_fd = os.dup(2)
_devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(_devnull, 0)
os.close(_devnull)


def send(obj):
    data = (json.dumps(obj) + "\n").encode()
    view = memoryview(data)
    while view:
        n = os.write(_proto_out_fd, view)
        view = view[n:]


def log(msg):
    try:
        os.write(_log_fd, ("[ship-kernel] %s\n" % msg).encode())
    except OSError:
        pass


# --- output capture: fds 1 and 2 -> pipe -> reader thread ------------------------
class Capture:
    """Drains the output pipe, keeps at most MAX_OUTPUT bytes per exec."""

    def __init__(self):
        r, w = os.pipe()
        self.r = r
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(w)
        self.cond = threading.Condition()
        self.buf = bytearray()
        self.truncated = False
        self.pending = b""
        self.marks = 0
        self.done = []
        t = threading.Thread(target=self._run, name="ship-capture", daemon=True)
        t.start()

    def _append(self, data):
        room = MAX_OUTPUT - len(self.buf)
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        self.buf += data

    def _run(self):
        keep = len(MARK) - 1
        while True:
            try:
                chunk = os.read(self.r, 65536)
            except InterruptedError:
                continue
            if not chunk:
                return
            with self.cond:
                data = self.pending + chunk
                while True:
                    idx = data.find(MARK)
                    if idx < 0:
                        break
                    self._append(data[:idx])
                    self.done.append((bytes(self.buf), self.truncated))
                    self.buf = bytearray()
                    self.truncated = False
                    self.marks += 1
                    data = data[idx + len(MARK):]
                # Hold back a possible marker prefix until the next chunk.
                if len(data) > keep:
                    self._append(data[: len(data) - keep])
                    data = data[len(data) - keep:]
                self.pending = data
                self.cond.notify_all()

    def collect(self, wait=5.0):
        """Flush, write the marker, and return (text, truncated) for this exec."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        with self.cond:
            target = self.marks + 1
        os.write(1, MARK)
        with self.cond:
            self.cond.wait_for(lambda: self.marks >= target, timeout=wait)
            if self.done:
                data, truncated = self.done.pop(0)
                self.done.clear()
            else:
                data, truncated = bytes(self.buf), self.truncated
        return data.decode("utf-8", "replace"), truncated


CAPTURE = Capture()
# Text streams over the captured fds, unbuffered so Python prints and subprocess
# writes keep their order.
sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)
sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)
sys.__stdout__ = sys.stdout
sys.__stderr__ = sys.stderr

# --- IPython shell with capturing display hooks ----------------------------------
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TERM", "dumb")
os.environ["PYTHONUNBUFFERED"] = "1"
warnings.filterwarnings("ignore", message=".*non-interactive.*")
warnings.filterwarnings("ignore", message=".*Matplotlib is currently using agg.*")

from IPython.core.displayhook import DisplayHook  # noqa: E402
from IPython.core.displaypub import DisplayPublisher  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402


class State:
    results = []
    displays = []


def _stringify(bundle):
    out = {}
    for mime, value in (bundle or {}).items():
        if isinstance(value, bytes):
            import base64

            value = base64.b64encode(value).decode()
        elif not isinstance(value, str):
            value = json.dumps(value)
        out[mime] = value
    return out


class CaptureDisplayHook(DisplayHook):
    """Keeps the last expression's value instead of printing `Out[n]:`."""

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        State.results.append(_stringify(format_dict))

    def finish_displayhook(self):
        pass


class CapturePublisher(DisplayPublisher):
    """Collects display() calls as display_data items."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        State.displays.append(_stringify(data))

    def clear_output(self, wait=False):
        pass


shell = InteractiveShell.instance(
    displayhook_class=CaptureDisplayHook,
    display_pub_class=CapturePublisher,
    colors="NoColor",
)
shell.colors = "NoColor"
try:
    shell.InteractiveTB.set_colors("NoColor")
    shell.SyntaxTB.set_colors("NoColor")
except Exception:
    pass


# Tracebacks go to the reply's `error`, not into the captured output.
shell._showtraceback = lambda etype, evalue, stb: None


def flush_figures():
    """Turns open matplotlib figures into image/png displays, like the inline backend."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        import base64
        import io

        for num in plt.get_fignums():
            fig = plt.figure(num)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", bbox_inches="tight")
            State.displays.append(
                {"image/png": base64.b64encode(buf.getvalue()).decode(), "text/plain": repr(fig)}
            )
        plt.close("all")
    except Exception as exc:  # a broken figure must not break the exec reply
        log("figure flush failed: %r" % exc)


def error_text(result):
    exc = result.error_in_exec or result.error_before_exec
    if exc is None:
        return None
    etype, value, tb = type(exc), exc, exc.__traceback__
    try:
        if isinstance(exc, SyntaxError):
            stb = shell.SyntaxTB.structured_traceback(etype, value, [])
        else:
            stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=1)
        return shell.InteractiveTB.stb2text(stb)
    except Exception:
        return "".join(traceback.format_exception(etype, value, tb))


def run(code):
    State.results = []
    State.displays = []
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Ship sends SIGINT on timeout; IPython turns it into a KeyboardInterrupt traceback.
        result = shell.run_cell(code, store_history=True)
        flush_figures()
    except KeyboardInterrupt:
        result = None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    output, truncated = CAPTURE.collect()
    data = [{"type": "display_data", "data": d} for d in State.displays]
    if result is None:
        return {"success": False, "output": output, "error": "KeyboardInterrupt", "data": data,
                "execution_count": None, "truncated": truncated}
    for bundle in State.results:
        data.append({"type": "execute_result", "data": bundle})
        text = bundle.get("text/plain")
        if text is not None:
            if output and not output.endswith("\n"):
                output += "\n"
            output += text + "\n"
    error = error_text(result)
    return {
        "success": error is None,
        "output": output,
        "error": error,
        "data": data,
        "execution_count": result.execution_count,
        "truncated": truncated,
    }


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.chdir(os.environ.get("SHIP_WORKSPACE", os.getcwd()))
    CAPTURE.collect()  # discard start-up noise
    send({"event": "ready", "python": sys.version.split()[0]})
    for line in _proto_in:
        try:
            req = json.loads(line)
        except ValueError:
            continue
        rid = req.get("id")
        try:
            reply = run(str(req.get("code", "")))
        except BaseException as exc:  # never let the loop die on one request
            reply = {"success": False, "output": "", "error": "kernel driver error: %r" % exc,
                     "data": [], "execution_count": None, "truncated": False}
        reply["id"] = rid
        send(reply)


main()
