"""The client's build backend (PEP 517 and PEP 660), on the standard library alone, so
that `pip install clients/python` needs nothing from an index: no setuptools, no
wheel (these machines cannot reach PyPI, and neither can many that run Bay).

A wheel holds `bay_client/` (its .py files and py.typed, nothing else) and the
dist-info: METADATA, WHEEL and RECORD with each file's sha256. An editable wheel
holds only a .pth naming this folder. Entries are sorted and dated by
SOURCE_DATE_EPOCH (default 1980-01-01), so the same sources make the same bytes.
The name, version and summary have one home: `bay_client/__init__.py`.
"""

import base64
import gzip
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "bay_client"
NAME = "bay-client"
TAG = "py3-none-any"
# The files a wheel or an sdist takes from the package folder.
_SHIPPED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.py|py\.typed")  # matched whole (fullmatch)


def _init_text():
    with open(os.path.join(ROOT, PACKAGE, "__init__.py"), encoding="utf-8") as f:
        return f.read()


def _dunder(name):
    """A `__name__ = "value"` line of bay_client/__init__.py (where the version lives)."""
    found = re.search(r'^__%s__ = "([^"\n]+)"$' % name, _init_text(), re.MULTILINE)
    if not found:
        raise RuntimeError("bay_client/__init__.py has no __%s__" % name)
    return found.group(1)


def _version():
    version = _dunder("version")
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
        raise RuntimeError("__version__ %r is not a release number" % version)
    return version


def _dist_info():
    return "%s-%s.dist-info" % (PACKAGE, _version())


def _metadata():
    return (
        "Metadata-Version: 2.2\n"
        "Name: %s\n"
        "Version: %s\n"
        "Summary: %s\n"
        "Requires-Python: >=3.8\n" % (NAME, _version(), _dunder("summary"))
    ).encode()


def _wheel_file():
    return ("Wheel-Version: 1.0\nGenerator: bay_build\nRoot-Is-Purelib: true\nTag: %s\n" % TAG).encode()


def _package_files():
    """(archive name, bytes) of every shipped file in bay_client/, sorted."""
    folder = os.path.join(ROOT, PACKAGE)
    out = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if _SHIPPED.fullmatch(name) and os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as f:
                out.append(("%s/%s" % (PACKAGE, name), f.read()))
    return out


# The dates an archive can hold: zip's from 1980, gzip's up to 2**32 - 1 (2106).
_FIRST_DATE, _LAST_DATE = 315532800, 2**32 - 1


def _epoch():
    """SOURCE_DATE_EPOCH (unset or empty: 1980-01-01; earlier dates read as 1980)."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return _FIRST_DATE
    if not re.fullmatch(r"-?[0-9]{1,20}", raw):
        raise RuntimeError("SOURCE_DATE_EPOCH must be Unix seconds (digits), not %r" % raw)
    if int(raw) > _LAST_DATE:
        raise RuntimeError("SOURCE_DATE_EPOCH %s is past what zip and gzip can date (2106)" % raw)
    return max(int(raw), _FIRST_DATE)


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d\n" % (name, digest, len(data))


def _write_wheel(directory, files):
    """Writes files plus the dist-info as a wheel in `directory`; returns its file name."""
    info = _dist_info()
    files = files + [(info + "/METADATA", _metadata()), (info + "/WHEEL", _wheel_file())]
    record = "".join(_record_line(n, d) for n, d in files) + info + "/RECORD,,\n"
    files.append((info + "/RECORD", record.encode()))
    name = "%s-%s-%s.whl" % (PACKAGE, _version(), TAG)
    date = time.gmtime(_epoch())[:6]
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files:
            entry = zipfile.ZipInfo(arcname, date)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    return name


def _write_metadata(directory):
    info = os.path.join(directory, _dist_info())
    os.makedirs(info, exist_ok=True)
    for name, data in (("METADATA", _metadata()), ("WHEEL", _wheel_file())):
        with open(os.path.join(info, name), "wb") as f:
            f.write(data)
    return _dist_info()


# PEP 517 / PEP 660 hooks.


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    return _write_metadata(metadata_directory)


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    return _write_metadata(metadata_directory)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, _package_files())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [("%s.pth" % PACKAGE, _pth_line(ROOT))])


def _pth_line(folder):
    """The .pth line that puts `folder` on sys.path. A .pth line starting with `import` is
    run, and Python splits the file at any line boundary (3.13 uses str.splitlines: also
    \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029) and strips each line: a folder name with
    such a character, or space at either end, could become another line or another folder.
    Only ASCII is written: older Pythons read the file in the locale's encoding."""
    if not (folder.isprintable() and folder == folder.strip() and folder.isascii() and os.path.isabs(folder)):
        raise RuntimeError("cannot name the folder %r in a .pth file for an editable install "
                           "(only printable ASCII, no space at either end); install without -e" % folder)
    return (folder + "\n").encode("ascii")


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (PACKAGE, _version())
    files = [("pyproject.toml", None), ("_build/bay_build.py", None)]
    files += _package_files()
    entries = [("PKG-INFO", _metadata())]
    for arcname, data in files:
        if data is None:
            with open(os.path.join(ROOT, arcname), "rb") as f:
                data = f.read()
        entries.append((arcname, data))
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname, data in sorted(entries):
            entry = tarfile.TarInfo("%s/%s" % (base, arcname))
            entry.size = len(data)
            entry.mtime = _epoch()
            entry.mode = 0o644
            tar.addfile(entry, io.BytesIO(data))
    name = base + ".tar.gz"
    with open(os.path.join(sdist_directory, name), "wb") as out:
        # gzip's own header carries a date too: the same one.
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=_epoch()) as z:
            z.write(tar_bytes.getvalue())
    return name
