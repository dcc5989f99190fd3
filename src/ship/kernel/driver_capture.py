"""Ship's Python kernel driver (driver.py), its output capture.

driver.py runs this file (its path is the driver's second argument) after the
protocol channel (driver_channel.py), which it gives this module as `channel`
before running it, and before any user code runs.

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
"""
import codecs
import collections
import io
import os
import select
import sys
import threading
import time

# `channel`: driver_channel.py's module (send, log, exit_broken), put here by the driver.
channel = globals()["channel"]

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
        self.displays = []  # the running cell's display() items, for its result
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
                channel.log("cannot restore fd %d: %r" % (fd, exc))

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
                self.displays.append(item)
        finally:
            self._done()

    # -- cells (main thread, SIGINT ignored) ------------------------------------------
    def start_cell(self, cell_id):
        """Output kept since the last cell becomes this cell's, and is sent as its first events."""
        with self.cond:
            self._drain_pipes()
            self.cell = cell_id
            self.displays = []
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
        try:
            self._loop()
        except BaseException as exc:
            # A cell broke what this thread runs on (e.g. builtins.isinstance = None breaks
            # json): without it no event goes out and every later cell would wait for its
            # timeout. The kernel's own code no longer works: exit now, with the reason.
            channel.exit_broken("the output capture failed: %r" % (exc,))

    def _loop(self):
        poller = select.poll()
        for r in self.read_fds.values():
            poller.register(r, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        while True:
            with self.cond:
                item, wait = self._due()
            if item is not None:
                try:
                    channel.send(item)
                except OSError as exc:
                    channel.log("protocol channel broken (%r); exiting" % exc)
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
