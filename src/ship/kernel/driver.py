"""Ship's Python kernel driver.

One long-lived process holding an IPython InteractiveShell, speaking Ship's kernel line
protocol (protocol.ts): one JSON request `{id, code}` per line on stdin; JSON events on
a private copy of the original stdout: `ready` once, then per cell `stream` (stdout or
stderr text) and `display` (a rich output) events as they are produced, and a `result`.

Output capture. sys.stdout and sys.stderr are text streams whose bytes go straight into
the capture, tagged with their stream. fds 1 and 2 are two pipes drained by one thread
(`ship-capture`), so subprocesses and C code writing to the inherited fds are captured
as stdout and stderr too and can never corrupt the protocol; fd 0 is /dev/null. Before
each Python-level write the pipes are drained first, so what a subprocess printed and the
prints around it keep their order.

The capture thread is the only writer of stream and display events: SIGINT (Ship's
interrupt) raises KeyboardInterrupt in the main thread only, and could otherwise cut an
event in half. Events wait in a bounded queue; when Ship reads slowly the thread blocks
on the protocol pipe, the queue fills, and writers wait (print() blocks, the pipes fill):
memory stays bounded and the pressure reaches user code.

Ship starts it with `python -I`, so neither the script's (writable) directory nor the
user site-packages can shadow the modules imported here. Fork children of user code
lose the protocol fds and exit when they leave the cell.
"""
import codecs
import collections
import io
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
import types
import warnings

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TERM", "dumb")
os.environ["PYTHONUNBUFFERED"] = "1"
warnings.filterwarnings("ignore", message=".*non-interactive.*")
warnings.filterwarnings("ignore", message=".*Matplotlib is currently using agg.*")


# --- lean start-up (memory per sandbox) ------------------------------------------
# `import IPython` loads its terminal front end (prompt_toolkit, ~120 modules) and the
# completer loads jedi and parso (~100 more): about 11 MiB per sandbox for code this
# driver never runs. Both are held back while the shell is built and restored before
# any user code runs: `IPython.embed` loads the real thing when called, and user code
# can `import jedi` as usual (IPython's own completer then simply does without it).
def _hold_back_unused_imports():
    import importlib
    import types

    embed_mod = types.ModuleType("IPython.terminal.embed")

    def embed(*args, **kwargs):
        sys.modules.pop("IPython.terminal.embed", None)
        return importlib.import_module("IPython.terminal.embed").embed(*args, **kwargs)

    embed_mod.embed = embed
    sys.modules["IPython.terminal.embed"] = embed_mod
    sys.modules["jedi"] = None  # ImportError inside IPython's completer: it falls back

    def release():
        if sys.modules.get("IPython.terminal.embed") is embed_mod:
            del sys.modules["IPython.terminal.embed"]
        if "jedi" in sys.modules and sys.modules["jedi"] is None:
            del sys.modules["jedi"]

    return release


_release_held_imports = _hold_back_unused_imports()

# IPython is imported while fd 2 is still Ship's stderr, so a broken install shows
# its traceback in Ship's log (and in the start-up error) instead of vanishing.
from IPython.core.displayhook import DisplayHook  # noqa: E402
from IPython.core.displaypub import DisplayPublisher  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402

MAX_OUTPUT = int(os.environ.get("SHIP_MAX_OUTPUT_BYTES", str(1024 * 1024)))
# Events waiting for the protocol, at most (then writers wait)...
QUEUE_BYTES = 1024 * 1024
# ...and a stream event goes out once this much text waits, or its oldest text is this old.
FLUSH_BYTES = 32 * 1024
FLUSH_SECONDS = 0.01
# One drain reads at most this much of a pipe (the rest on the next).
DRAIN_BYTES = 256 * 1024
DRIVER_PID = os.getpid()
MAIN_THREAD = threading.get_ident()

# --- protocol channel: private dups of the original stdin/stdout -----------------
_proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
# The environment the kernel's variables go to, kept even if a cell rebinds os.environ.
_environ = os.environ
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
    with _proto_lock:
        while view:
            n = os.write(_proto_out_fd, view)
            view = view[n:]


def log(msg):
    try:
        os.write(_log_fd, ("[ship-kernel] %s\n" % msg).encode())
    except OSError:
        pass


# --- output capture ---------------------------------------------------------------
class Capture:
    """This cell's output (for the result, capped at MAX_OUTPUT bytes) and its events.

    Everything is guarded by `cond`. Between cells output is kept (capped) for the next
    cell, like a terminal would show it; it is not sent as events until a cell runs.
    """

    NAMES = ("stdout", "stderr")

    def __init__(self):
        self.read_fds = {}
        self.write_fds = {}
        for fd, name in ((1, "stdout"), (2, "stderr")):
            r, w = os.pipe()
            os.set_blocking(r, False)
            self.read_fds[name] = r
            # Private write ends: fds 1 and 2 are restored from them after user code moved them.
            self.write_fds[fd] = w
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.restore_fds()
        self.cond = threading.Condition()
        self.cell = None
        self.parts = []  # (name, text) of the output so far
        self.size = 0
        self.truncated = False
        self.decoders = {name: self._decoder() for name in self.NAMES}
        self.queue = collections.deque()  # events waiting for the protocol
        self.queued = 0
        self.oldest = None  # when the head's text started waiting
        self.writing = False
        self.flush_all = False
        # SIGINT while the main thread updates the capture is held until it is done.
        self.main_busy = False
        self.interrupt_pending = False
        # The cell whose interrupt is to be acknowledged (set from the signal handler, without cond).
        self.ack_cell = None
        self.drain_poll = select.poll()
        for r in self.read_fds.values():
            self.drain_poll.register(r, select.POLLIN)
        self.fd_names = {r: name for name, r in self.read_fds.items()}
        t = threading.Thread(target=self._run, name="ship-capture", daemon=True)
        t.start()

    @staticmethod
    def _decoder():
        return codecs.getincrementaldecoder("utf-8")(errors="replace")

    def restore_fds(self):
        """Points fds 1 and 2 back at the capture pipes (user code may have moved them)."""
        for fd, w in self.write_fds.items():
            try:
                os.dup2(w, fd)
            except OSError as exc:
                log("cannot restore fd %d: %r" % (fd, exc))

    # -- under cond ------------------------------------------------------------------
    def _wake(self):
        try:
            os.write(self.wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is pending already

    def _enqueue(self, item, size):
        self.queue.append(item)
        self.queued += size
        if len(self.queue) == 1:
            self.oldest = time.monotonic()
        self._wake()

    def _enqueue_text(self, name, text):
        tail = self.queue[-1] if self.queue else None
        if tail is not None and tail["event"] == "stream" and tail["name"] == name:
            tail["parts"].append(text)
            self.queued += len(text)
            if self.queued >= FLUSH_BYTES:
                self._wake()
            return
        self._enqueue({"id": self.cell, "event": "stream", "name": name, "parts": [text]}, len(text))

    def _accept(self, name, data, final=False):
        if self.truncated:
            return
        room = MAX_OUTPUT - self.size
        if len(data) > room:
            data = data[: max(room, 0)]
            self.truncated = True
            final = True
        self.size += len(data)
        text = self.decoders[name].decode(data, final)
        if final:
            self.decoders[name] = self._decoder()
        if not text:
            return
        self.parts.append((name, text))
        if self.cell is not None:
            self._enqueue_text(name, text)

    def _drain_pipes(self):
        """Reads what the pipes hold now (non-blocking)."""
        for fd, _ in self.drain_poll.poll(0):
            name = self.fd_names[fd]
            left = DRAIN_BYTES
            while left > 0:
                try:
                    chunk = os.read(fd, min(65536, left))
                except (BlockingIOError, InterruptedError):
                    break
                if not chunk:
                    break
                left -= len(chunk)
                self._accept(name, chunk)

    def _wait_for_room(self):
        while self.queued >= QUEUE_BYTES and self.cell is not None:
            # Not busy while waiting: an interrupt may end the wait (nothing was taken yet).
            self.main_busy = False
            self.cond.wait()
            self._busy()

    def _busy(self):
        if threading.get_ident() == MAIN_THREAD:
            self.main_busy = True

    def _done(self):
        if threading.get_ident() != MAIN_THREAD:
            return
        self.main_busy = False
        if self.interrupt_pending:
            self.interrupt_pending = False
            raise KeyboardInterrupt

    # -- called by user code (sys.stdout/sys.stderr, display()) ---------------------
    def write(self, name, fd, data):
        """Bytes written to sys.stdout / sys.stderr."""
        if os.getpid() != DRIVER_PID:
            # A fork child: the inherited pipe is its way to the parent.
            os.write(fd, data)
            return
        self._busy()
        try:
            with self.cond:
                self._wait_for_room()
                self._drain_pipes()
                self._accept(name, data)
        finally:
            self._done()

    def display(self, item):
        """A rich output of the running cell, in order with the stream text."""
        self._busy()
        try:
            with self.cond:
                self._wait_for_room()
                self._drain_pipes()
                if self.cell is not None and item["data"]:
                    size = sum(len(v) for v in item["data"].values())
                    self._enqueue({"id": self.cell, "event": "display", "data": item["data"]}, size)
                State.displays.append(item)
        finally:
            self._done()

    # -- cells (main thread, SIGINT ignored) ------------------------------------------
    def start_cell(self, cell_id):
        """Output kept since the last cell becomes this cell's, and is sent as its first events."""
        with self.cond:
            self._drain_pipes()
            self.cell = cell_id
            for name, text in self.parts:
                self._enqueue_text(name, text)

    def finish_cell(self):
        """Collects the cell's output and waits until its events are written; returns (text, truncated).

        fds 1 and 2 lead back to the pipes as soon as the cell is over (after the flush,
        so what the cell wrote still goes where the cell pointed them): between cells they
        are never free for another open() to take.
        """
        for stream in (sys.stdout, sys.stderr, STREAMS.get("out"), STREAMS.get("err")):
            try:
                stream.flush()
            except Exception:
                pass
        self.restore_fds()
        with self.cond:
            self._drain_pipes()
            for name in self.NAMES:
                self._accept(name, b"", final=True)
            text = "".join(t for _, t in self.parts)
            truncated = self.truncated
            self.parts = []
            self.size = 0
            self.truncated = False
            self.cell = None
            self.flush_all = True
            self._wake()
            while self.queue or self.writing or self.ack_cell is not None:
                self.cond.wait()
            self.flush_all = False
        return text, truncated

    # -- the capture thread ---------------------------------------------------------
    def acknowledge_interrupt(self):
        """From the SIGINT handler: the capture thread says `interrupted` for the running cell.

        Takes no lock (the handler may run while the main thread holds cond): a plain
        attribute and a wake-up byte.
        """
        if self.cell is not None:
            self.ack_cell = self.cell
            self._wake()

    def _due(self):
        """The head event if it should go out now, else (None, seconds to wait or None)."""
        if self.ack_cell is not None:
            # First: Ship then knows the result is coming, however long it takes to build.
            item = {"id": self.ack_cell, "event": "interrupted"}
            self.ack_cell = None
            self.writing = True
            return item, None
        if not self.queue:
            self.queued = 0
            return None, None
        head = self.queue[0]
        waited = time.monotonic() - self.oldest
        if (
            head["event"] != "stream"
            or len(self.queue) > 1
            or self.flush_all
            or self.queued >= FLUSH_BYTES
            or waited >= FLUSH_SECONDS
        ):
            self.queue.popleft()
            self.oldest = time.monotonic() if self.queue else None
            if head["event"] == "stream":
                size = sum(len(p) for p in head["parts"])
                head = {"id": head["id"], "event": "stream", "name": head["name"], "text": "".join(head["parts"])}
            else:
                size = sum(len(v) for v in head["data"].values())
            self.queued -= size
            self.writing = True
            return head, None
        return None, FLUSH_SECONDS - waited

    def _run(self):
        poller = select.poll()
        for r in self.read_fds.values():
            poller.register(r, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        while True:
            with self.cond:
                item, wait = self._due()
            if item is not None:
                try:
                    send(item)
                except OSError as exc:
                    log("protocol channel broken (%r); exiting" % exc)
                    os._exit(1)
                with self.cond:
                    self.writing = False
                    self.cond.notify_all()
                continue
            try:
                ready = poller.poll(None if wait is None else max(int(wait * 1000), 1))
            except InterruptedError:
                continue
            for fd, _ in ready:
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 4096)
                    except (BlockingIOError, InterruptedError):
                        pass
            with self.cond:
                self._drain_pipes()


class CaptureStream(io.BufferedIOBase):
    """The binary layer under sys.stdout / sys.stderr (its `.buffer`): bytes go to the capture, tagged.

    A buffered stream that takes every byte at once: TextIOWrapper then never writes a
    chunk twice, even when a deferred interrupt is raised on the way out of write().
    """

    def __init__(self, name, fd):
        super().__init__()
        self._stream = name
        self._fd = fd
        self.name = "<%s>" % name

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def isatty(self):
        return False

    def write(self, b):
        if self.closed:
            raise ValueError("write to closed file")
        data = bytes(b)
        CAPTURE.write(self._stream, self._fd, data)
        return len(data)


STREAMS = {}


def reset_streams():
    """Before each cell: fds 1/2 and sys.stdout/sys.stderr lead to the capture again.

    The text streams are line buffered, like on a terminal: a line is taken as it ends.
    """
    CAPTURE.restore_fds()
    for key, fd, name in (("out", 1, "stdout"), ("err", 2, "stderr")):
        stream = STREAMS.get(key)
        if stream is None or stream.closed:
            raw = CaptureStream(name, fd)
            stream = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", line_buffering=True)
            STREAMS[key] = stream
        setattr(sys, name, stream)
        setattr(sys, "__%s__" % name, stream)


CAPTURE = Capture()
reset_streams()


def on_sigint(signum, frame):
    """Ship's interrupt: KeyboardInterrupt, unless the capture is mid-update (then right after)."""
    CAPTURE.acknowledge_interrupt()
    if CAPTURE.main_busy:
        CAPTURE.interrupt_pending = True
        return
    raise KeyboardInterrupt


# --- IPython shell with capturing display hooks ----------------------------------
class State:
    results = []
    displays = []
    budget = None


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


def publish_display(bundle):
    """A display_data item, cut to the cell's budget, sent as it is produced."""
    CAPTURE.display({"type": "display_data", "data": State.budget.bundle(bundle)})


class CapturePublisher(DisplayPublisher):
    """Collects display() calls as display_data items."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        publish_display(_stringify(data))

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
        import io as _io

        for num in plt.get_fignums():
            fig = plt.figure(num)
            buf = _io.BytesIO()
            fig.savefig(buf, format="png", bbox_inches="tight")
            publish_display({"image/png": base64.b64encode(buf.getvalue()).decode(), "text/plain": repr(fig)})
        plt.close("all")
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a broken figure must not break the exec reply
        log("figure flush failed: %r" % exc)


def save_history():
    """Moves this cell's input from IPython's cache into the in-memory history database."""
    try:
        shell.history_manager.writeout_cache()
    except Exception as exc:  # history is a convenience; the reply matters more
        log("history write failed: %r" % exc)


def user_frames(tb):
    """The traceback without the driver's own frames (an interrupt may land in the capture)."""
    kept = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != __file__:
            kept.append(tb)
        tb = tb.tb_next
    chain = None
    for t in reversed(kept):
        chain = types.TracebackType(chain, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return chain


def error_text(result):
    exc = result.error_in_exec or result.error_before_exec
    if exc is None:
        return None
    etype, value, tb = type(exc), exc, user_frames(exc.__traceback__)
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


def run(rid, code):
    State.results = []
    State.displays = []
    State.budget = Budget()
    reset_streams()
    CAPTURE.start_cell(rid)
    CAPTURE.interrupt_pending = False
    signal.signal(signal.SIGINT, on_sigint)
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
    output, truncated = CAPTURE.finish_cell()
    budget = State.budget
    data = list(State.displays)
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


# --- warm-up (first exec latency) -------------------------------------------------
def warm_up():
    """Pays IPython's first-use costs before Ship hears the kernel is ready.

    A silent cell (compiler, AST passes) and one formatted value (the display
    formatter's lazy imports) leave no trace: no history, no Out, no `_`, no count.
    So a sandbox's first exec, above all a warm-pool member's, is as fast as its second.
    """
    try:
        shell.run_cell("pass", silent=True)
        shell.display_formatter.format(0)
    except Exception as exc:  # a slower first exec is better than no kernel
        log("warm-up failed: %r" % exc)
    _release_held_imports()


# --- environment variables of a request ------------------------------------------
def _env_items(value):
    """A request's variables: only string names and values (Ship checked them)."""
    if not isinstance(value, dict):
        return []
    return [(k, v) for k, v in value.items() if isinstance(k, str) and isinstance(v, str)]


def set_env(value, before=None):
    """Sets the variables in the kernel's environment, noting in `before` what each was (None: unset)."""
    for name, text in _env_items(value):
        if before is not None and name not in before:
            before[name] = _environ.get(name)
        _environ[name] = text


def restore_env(before):
    """Puts the variables `set_env` changed back as they were."""
    for name, text in before.items():
        try:
            if text is None:
                _environ.pop(name, None)
            else:
                _environ[name] = text
        except Exception as exc:  # e.g. a cell replaced a value with something odd
            log("could not restore %r: %r" % (name, exc))


def _request_lines():
    """Ship's request lines, read in large chunks.

    Iterating the unbuffered protocol file reads one byte per system call: a 1 MiB
    cell took seconds to arrive, and the interrupt of its timeout could not stop that.
    """
    fd = _proto_in.fileno()
    pending = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            if pending:
                yield b"".join(pending)
            return
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                pending.append(chunk[start:])
                break
            pending.append(chunk[start:end + 1])
            yield b"".join(pending)
            pending = []
            start = end + 1


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The context's working directory (the workspace unless Ship says otherwise).
    os.chdir(os.environ.get("SHIP_CONTEXT_CWD") or os.environ.get("SHIP_WORKSPACE") or os.getcwd())
    warm_up()
    CAPTURE.finish_cell()  # discard start-up noise
    send({"event": "ready", "runtime": "python " + sys.version.split()[0], "language": "python"})
    for line in _request_lines():
        try:
            req = json.loads(line)
        except ValueError:
            continue
        rid = req.get("id")
        before = {}
        try:
            # The sandbox's own variables are kept; the run's are put back once it ends.
            set_env(req.get("base_env"))
            set_env(req.get("env"), before)
            reply = run(rid, str(req.get("code", "")))
        except BaseException as exc:  # never let the loop die on one request
            exit_if_fork_child()
            try:
                CAPTURE.finish_cell()
            except BaseException:
                pass
            reply = {"success": False, "output": "", "error": "kernel driver error: %r" % exc,
                     "data": [], "execution_count": None, "truncated": False}
        restore_env(before)
        reply["id"] = rid
        reply["event"] = "result"
        send(reply)


main()
