"""Runs `bay sandbox shell sb-1` against BAY_URL on a pseudo-terminal read at RATE
bytes a second (a slow terminal), types Enter ~ . after WAIT seconds, and prints
one JSON line: how long bay took to end after it, the bytes read after it, its
exit code. Usage: slow-tty.py CLI RATE WAIT"""
import json, os, pty, select, subprocess, sys, time

cli, rate, wait = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
master, slave = pty.openpty()
proc = subprocess.Popen(["bun", cli, "sandbox", "shell", "sb-1"], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
os.close(slave)
start = time.time()
typed_at = None
after = 0
while proc.poll() is None and time.time() - start < wait + 60:
    if typed_at is None and time.time() - start >= wait:
        os.write(master, b"\r~.")
        typed_at = time.time()
    ready, _, _ = select.select([master], [], [], 0.01)
    if not ready:
        continue
    try:
        data = os.read(master, 4096)
    except OSError:
        break
    if typed_at is not None:
        after += len(data)
    time.sleep(len(data) / rate)
if proc.poll() is None:
    proc.kill()
proc.wait()
print(json.dumps({"ended_after_s": None if typed_at is None else time.time() - typed_at, "bytes_after": after, "code": proc.returncode}))
