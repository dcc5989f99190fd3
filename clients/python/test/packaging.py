"""The client as a package: `pip install clients/python` with no index at all (the
build backend is the client's own, _build/bay_build.py), into a fresh virtual
environment; the installed copy runs units.py from outside the source tree, and
uninstalling leaves nothing. Then the editable install, and the wheel and sdist
themselves: only the package's files, every RECORD hash right, the same bytes when
built twice. Exits 0 and prints "packaging: ok" when all hold."""

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(CLIENT, "_build"))
sys.path.insert(0, CLIENT)

import bay_build  # noqa: E402
import bay_client  # noqa: E402

VERSION = bay_client.__version__
SHIPPED = sorted(n for n in os.listdir(os.path.join(CLIENT, "bay_client")) if n.endswith(".py") or n == "py.typed")
assert "py.typed" in SHIPPED and "_operations.py" in SHIPPED, SHIPPED


def run(*args, cwd=None, env=None):
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def pip(env_python, *args):
    # The host's pip driving the new environment (it has no pip of its own).
    return run(sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", env_python, *args)


def install(env_python, *args):
    # --no-index: nothing is fetched, so the build backend needs nothing but Python.
    return pip(env_python, "install", "--no-index", "--no-cache-dir", *args)


def installed_files(site):
    return sorted(os.path.relpath(os.path.join(d, f), site) for d, _, fs in os.walk(site) for f in fs if "bay_client" in os.path.join(d, f))


with tempfile.TemporaryDirectory() as tmp:
    env_dir = os.path.join(tmp, "env")
    venv.create(env_dir, with_pip=False)
    py = os.path.join(env_dir, "bin", "python")
    site = run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    where = [py, "-c", "import bay_client; print(bay_client.__file__, bay_client.__version__)"]

    # 1. A plain install: the package lands in site-packages and works from anywhere.
    install(py, CLIENT)
    out = run(*where, cwd=tmp, env=clean).split()
    assert out == [os.path.join(site, "bay_client", "__init__.py"), VERSION], out
    got = run(py, "-X", "dev", "-W", "error", os.path.join(HERE, "units.py"), cwd=tmp, env={**clean, "BAY_CLIENT_INSTALLED": "1"})
    assert got == "units: ok (installed)\n", got
    show = pip(py, "show", "bay-client")
    assert f"Version: {VERSION}" in show and "Name: bay-client" in show, show
    pip(py, "uninstall", "-y", "bay-client")
    assert installed_files(site) == [], installed_files(site)

    # 2. An editable install: the source folder itself is imported.
    install(py, "-e", CLIENT)
    out = run(*where, cwd=tmp, env=clean).split()
    assert out == [os.path.join(CLIENT, "bay_client", "__init__.py"), VERSION], out
    pip(py, "uninstall", "-y", "bay-client")
    assert installed_files(site) == [], installed_files(site)
    assert run(py, "-c", "import importlib.util as u; print(u.find_spec('bay_client'))", cwd=tmp, env=clean) == "None\n"

    # 3. The wheel: the package's files and the dist-info, nothing else (no tests,
    # no build backend, no caches), each RECORD line right, the same bytes twice.
    wheels = []
    for i in range(2):
        out_dir = os.path.join(tmp, f"wheel{i}")
        os.mkdir(out_dir)
        name = bay_build.build_wheel(out_dir)
        assert name == f"bay_client-{VERSION}-py3-none-any.whl", name
        with open(os.path.join(out_dir, name), "rb") as f:
            wheels.append(f.read())
    assert wheels[0] == wheels[1], "two builds of the same sources differ"
    info = f"bay_client-{VERSION}.dist-info"
    with zipfile.ZipFile(io.BytesIO(wheels[0])) as z:
        names = z.namelist()
        assert sorted(names) == sorted([f"bay_client/{n}" for n in SHIPPED] + [f"{info}/{n}" for n in ("METADATA", "WHEEL", "RECORD")]), names
        record = list(csv.reader(io.StringIO(z.read(f"{info}/RECORD").decode())))
        assert sorted(r[0] for r in record) == sorted(names), record
        for path, digest, size in record:
            if path == f"{info}/RECORD":
                assert (digest, size) == ("", ""), (digest, size)
                continue
            data = z.read(path)
            want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (want, len(data)), path
        meta = z.read(f"{info}/METADATA").decode()
        assert f"Name: bay-client\nVersion: {VERSION}\n" in meta and "Requires-Python: >=3.8" in meta, meta

    # 4. The sdist: enough to build the same wheel again, nothing else.
    sdists = []
    for i in range(2):
        out_dir = os.path.join(tmp, f"sdist{i}")
        os.mkdir(out_dir)
        name = bay_build.build_sdist(out_dir)
        with open(os.path.join(out_dir, name), "rb") as f:
            sdists.append(f.read())
    assert sdists[0] == sdists[1], "two sdists of the same sources differ"
    base = f"bay_client-{VERSION}"
    with tarfile.open(fileobj=io.BytesIO(sdists[0])) as tar:
        members = sorted(m.name for m in tar.getmembers())
        assert members == sorted(
            [f"{base}/{n}" for n in ("PKG-INFO", "pyproject.toml", "_build/bay_build.py")] + [f"{base}/bay_client/{n}" for n in SHIPPED]
        ), members
        assert all(m.isfile() and m.mode == 0o644 for m in tar.getmembers())
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(os.path.join(tmp, "unpacked"), **safe)
    install(py, os.path.join(tmp, "unpacked", base))
    out = run(*where, cwd=tmp, env=clean).split()
    assert out == [os.path.join(site, "bay_client", "__init__.py"), VERSION], out

# 5. What the backend refuses or leaves out. A folder an editable .pth cannot name
# safely (Python splits .pth files at any line boundary and runs `import` lines).
for folder in ["/tmp/a\u2028import os; os.system('id')#", "/tmp/a\x0bimport os", "/tmp/a\n", "/tmp/a ", " /tmp/a", "/tmp/ü", "rel/a"]:
    try:
        bay_build._pth_line(folder)
        raise AssertionError(f"{folder!r} was written into a .pth")
    except RuntimeError:
        pass
assert bay_build._pth_line("/tmp/a b/c") == b"/tmp/a b/c\n"
# SOURCE_DATE_EPOCH: empty is unset, early dates read as 1980, junk and dates past 2106 stop the build.
for raw, want in [("", 315532800), ("0", 315532800), ("-5", 315532800), (" 1700000000 ", 1700000000)]:
    os.environ["SOURCE_DATE_EPOCH"] = raw
    assert bay_build._epoch() == want, raw
for raw in ["abc", "1.7e9", "0x10", str(2**32), "9" * 30]:
    os.environ["SOURCE_DATE_EPOCH"] = raw
    try:
        bay_build._epoch()
        raise AssertionError(f"SOURCE_DATE_EPOCH={raw!r} was taken")
    except RuntimeError:
        pass
del os.environ["SOURCE_DATE_EPOCH"]
# Stray files beside the package's own are not shipped: a name ending in a newline,
# caches, other suffixes, folders, links.
with tempfile.TemporaryDirectory() as tmp:
    copy = os.path.join(tmp, "client")
    os.makedirs(os.path.join(copy, "bay_client", "sub"))
    for name in SHIPPED:
        with open(os.path.join(CLIENT, "bay_client", name), "rb") as src, open(os.path.join(copy, "bay_client", name), "wb") as dst:
            dst.write(src.read())
    for stray in ["evil.py\n", "x.pyc", "notes.txt", "sub/inner.py", ".hidden.py"]:
        with open(os.path.join(copy, "bay_client", stray), "w") as f:
            f.write("raise SystemExit('shipped')\n")
    os.symlink("/etc/passwd", os.path.join(copy, "bay_client", "link.py"))
    root, bay_build.ROOT = bay_build.ROOT, copy
    try:
        name = bay_build.build_wheel(tmp)
    finally:
        bay_build.ROOT = root
    with zipfile.ZipFile(os.path.join(tmp, name)) as z:
        shipped = sorted(n for n in z.namelist() if n.startswith("bay_client/"))
    assert shipped == [f"bay_client/{n}" for n in SHIPPED], shipped

print("packaging: ok")
