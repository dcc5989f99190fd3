"""Ship's Python kernel driver.

One long-lived process holding an IPython InteractiveShell, speaking Ship's kernel line
protocol (protocol.ts): one JSON request `{id, code}` per line on stdin; JSON events on
a private copy of the original stdout: `ready` once, then per cell `stream` (stdout or
stderr text) and `display` (a rich output) events as they are produced, and a `result`.
The protocol channel is driver_channel.py's, the output capture driver_capture.py's.

Ship starts it with `python -I`, so neither the script's (writable) directory nor the
user site-packages can shadow the modules imported here. Fork children of user code
lose the protocol fds and exit when they leave the cell.
"""
import json
import os
import signal
import sys
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

# The protocol channel (driver_channel.py) and the output capture (driver_capture.py),
# run from the source Ship wrote at the paths it gives as arguments: never found on
# sys.path, which user code can change, and never through the import system, which
# would read and write a cached .pyc under __pycache__ that a cell could replace for
# every later kernel.
def _run_module(path, name, **names):
    with open(path, "rb") as f:
        source = f.read()
    module = types.ModuleType(name)
    module.__file__ = path
    module.__dict__.update(names)
    exec(compile(source, path, "exec", dont_inherit=True), module.__dict__)
    return module


_channel_path, _capture_path = sys.argv[1], sys.argv[2]
del sys.argv[1:]
_channel = _run_module(_channel_path, "_ship_channel")
_capture = _run_module(_capture_path, "_ship_capture", channel=_channel)
send, log = _channel.send, _channel.log
CAPTURE, reset_streams, on_sigint = _capture.CAPTURE, _capture.reset_streams, _capture.on_sigint
MAX_OUTPUT, DRIVER_PID = _capture.MAX_OUTPUT, _capture.DRIVER_PID
# The environment the kernel's variables go to, kept even if a cell rebinds os.environ.
_environ = os.environ
# The driver's own files: their frames are left out of a cell's traceback.
_OWN_FILES = frozenset((__file__, _channel.__file__, _capture.__file__))


# --- IPython shell with capturing display hooks ----------------------------------
class State:
    results = []
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
        if tb.tb_frame.f_code.co_filename not in _OWN_FILES:
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
    data = list(CAPTURE.displays)
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
    fd = _channel.proto_in.fileno()
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
        try:
            send(reply)
        except BaseException as exc:  # a cell broke what the reply is written with
            _channel.exit_broken("cannot write a result: %r" % (exc,))


main()
