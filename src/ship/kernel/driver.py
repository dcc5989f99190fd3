"""Ship's Python kernel driver.

One long-lived process holding an IPython InteractiveShell. Ship sends one JSON
request per line on stdin and reads one JSON reply per line on a private copy of
the original stdout. fd 0 is then pointed at /dev/null and fds 1 and 2 at a pipe
drained by a thread, so anything user code prints (including subprocesses writing
to the inherited fds) is captured and can never corrupt the protocol.

Ship starts it with `python -I`, so neither the script's (writable) directory nor
the user site-packages can shadow the modules imported here. Fork children of user
code lose the protocol fds and exit when they leave the cell.
"""
import json
import os
import signal
import sys
import threading
import traceback
import warnings

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TERM", "dumb")
os.environ["PYTHONUNBUFFERED"] = "1"
warnings.filterwarnings("ignore", message=".*non-interactive.*")
warnings.filterwarnings("ignore", message=".*Matplotlib is currently using agg.*")

# IPython is imported while fd 2 is still Ship's stderr, so a broken install shows
# its traceback in Ship's log (and in the start-up error) instead of vanishing.
from IPython.core.displayhook import DisplayHook  # noqa: E402
from IPython.core.displaypub import DisplayPublisher  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402

MAX_OUTPUT = int(os.environ.get("SHIP_MAX_OUTPUT_BYTES", str(1024 * 1024)))
MARK = ("\x00ship-end-%s\x00" % os.urandom(8).hex()).encode()
DRIVER_PID = os.getpid()

# --- protocol channel: private dups of the original stdin/stdout -----------------
_proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
_proto_out_fd = os.dup(1)
_log_fd = os.dup(2)
_devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(_devnull, 0)
os.close(_devnull)


def _after_fork_in_child():
    """A fork of user code must not hold (or use) Ship's pipes: point them at /dev/null.

    dup2 rather than close, so the fd numbers stay valid for the objects wrapping them.
    """
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (_proto_in.fileno(), _proto_out_fd, _log_fd):
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
        # Private write end: the end marker goes here, so user code closing or
        # redirecting fds 1/2 cannot lose it.
        self.w = w
        self.restore_fds()
        self.cond = threading.Condition()
        self.buf = bytearray()
        self.truncated = False
        self.pending = b""
        self.marks = 0
        self.done = []
        t = threading.Thread(target=self._run, name="ship-capture", daemon=True)
        t.start()

    def restore_fds(self):
        """Points fds 1 and 2 back at the capture pipe (user code may have moved them)."""
        for fd in (1, 2):
            try:
                os.dup2(self.w, fd)
            except OSError as exc:
                log("cannot restore fd %d: %r" % (fd, exc))

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
        """Flush, write the marker, and return (text, truncated) for this exec.

        fds 1 and 2 lead back to the pipe as soon as the cell is over (after the
        flush, so what the cell wrote still goes where the cell pointed them):
        between cells they are never free for another open() to take.
        """
        for stream in (sys.stdout, sys.stderr, STREAMS.get("out"), STREAMS.get("err")):
            try:
                stream.flush()
            except Exception:
                pass
        self.restore_fds()
        with self.cond:
            target = self.marks + 1
        os.write(self.w, MARK)
        with self.cond:
            self.cond.wait_for(lambda: self.marks >= target, timeout=wait)
            if self.done:
                data, truncated = self.done.pop(0)
                self.done.clear()
            else:
                data, truncated = bytes(self.buf), self.truncated
        return data.decode("utf-8", "replace"), truncated


STREAMS = {}


def reset_streams():
    """Before each cell: fds 1/2 and sys.stdout/sys.stderr lead to the capture pipe again.

    Text streams over the captured fds are line buffered so Python prints and
    subprocess writes keep their order.
    """
    CAPTURE.restore_fds()
    for key, fd, name in (("out", 1, "stdout"), ("err", 2, "stderr")):
        stream = STREAMS.get(key)
        if stream is None or stream.closed:
            stream = open(fd, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)
            STREAMS[key] = stream
        setattr(sys, name, stream)
        setattr(sys, "__%s__" % name, stream)


CAPTURE = Capture()
reset_streams()

# --- IPython shell with capturing display hooks ----------------------------------
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
            value = json.dumps(value, default=repr)
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


# History lives in memory and is written by the main thread after each cell.
# IPython's default, a SQLite file under ~/.ipython written by a background
# thread, put files in /workspace and raced user code: with fds 1/2 closed by a
# cell, that thread's journal open() got fd 1, and SQLite then closes such a
# descriptor and reopens /dev/null on it, which could land on the restored pipe.
_config = Config()
_config.HistoryManager.hist_file = ":memory:"

shell = InteractiveShell.instance(
    config=_config,
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


def save_history():
    """Moves this cell's input from IPython's cache into the in-memory history database."""
    try:
        shell.history_manager.writeout_cache()
    except Exception as exc:  # history is a convenience; the reply matters more
        log("history write failed: %r" % exc)


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


def clip(text, limit):
    """At most `limit` characters of text: its head and tail around a marker."""
    if len(text) <= limit:
        return text, False
    half = max(limit // 2, 0)
    note = "\n... [%d characters truncated] ...\n" % (len(text) - 2 * half)
    return text[:half] + note + text[len(text) - half:], True


class Budget:
    """What is left of the MAX_OUTPUT characters allowed for one reply's `data`."""

    def __init__(self):
        self.left = MAX_OUTPUT
        self.truncated = False

    def bundle(self, bundle):
        out = {}
        for mime, value in bundle.items():
            if len(value) <= self.left:
                out[mime] = value
                self.left -= len(value)
                continue
            self.truncated = True
            # Text can be cut; an image or JSON cut short is garbage, so it is dropped.
            if mime.startswith("text/") and self.left > 0:
                out[mime] = value[: self.left]
                self.left = 0
        return out


def exit_if_fork_child():
    """A fork of user code that left the cell must not run Ship's loop: it ends here."""
    if os.getpid() != DRIVER_PID:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(0)


def run(code):
    State.results = []
    State.displays = []
    reset_streams()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Ship sends SIGINT on timeout; IPython turns it into a KeyboardInterrupt traceback.
        try:
            result = shell.run_cell(code, store_history=True)
        finally:
            exit_if_fork_child()
        flush_figures()
        save_history()
    except KeyboardInterrupt:
        result = None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    output, truncated = CAPTURE.collect()
    budget = Budget()
    data = [{"type": "display_data", "data": budget.bundle(d)} for d in State.displays]
    if result is None:
        return {"success": False, "output": output, "error": "KeyboardInterrupt", "data": data,
                "execution_count": None, "truncated": truncated or budget.truncated}
    for bundle in State.results:
        data.append({"type": "execute_result", "data": budget.bundle(bundle)})
        text = bundle.get("text/plain")
        if text is not None:
            if output and not output.endswith("\n"):
                output += "\n"
            room = MAX_OUTPUT - len(output) - 1
            if len(text) > room:
                text = text[: max(room, 0)]
                truncated = True
            output += text + "\n"
    error = error_text(result)
    if error is not None:
        error, cut = clip(error, MAX_OUTPUT)
        truncated = truncated or cut
    return {
        "success": error is None,
        "output": output,
        "error": error,
        "data": data,
        "execution_count": result.execution_count,
        "truncated": truncated or budget.truncated,
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
            exit_if_fork_child()
            reply = {"success": False, "output": "", "error": "kernel driver error: %r" % exc,
                     "data": [], "execution_count": None, "truncated": False}
        reply["id"] = rid
        send(reply)


main()
