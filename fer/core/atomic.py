"""Write-then-rename helpers: a killed stage never leaves a half-written output.

An output `dir/name` is written as the sibling `dir/.name.tmp-<pid>` and renamed onto
`name` once complete; a directory that already exists is first moved aside to
`dir/.name.old-<pid>`. Every file and directory of the result is fsynced before the
rename and the parent directory after it, so a crash cannot publish a name whose data
is still only in the page cache. A writer killed midway leaves its temporary behind;
the next write of the same `name` removes the temporaries of writers that are no longer
alive (the pid in the name says whose it is) and leaves those of live writers alone.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from pathlib import Path


def _tmp_sibling(path: Path, kind: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists and can still run. Signal 0 checks without
    sending; a zombie (killed, not yet reaped: a SIGKILLed stage whose dvc died with it
    waits for init) answers signal 0 but will never finish its output, so it counts as
    dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # exists, owned by someone else
        pass
    if not Path("/proc/self/stat").exists():
        return True                  # no /proc (macOS): signal 0 is all there is
    try:                             # Linux: the state letter follows "(comm) "
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
    except FileNotFoundError:
        return False                 # exited and reaped since the signal
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def clean_stale(path) -> list:
    """Remove `.<name>.tmp-<pid>` / `.<name>.old-<pid>` siblings of `path` left by dead
    writers; returns what was removed."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:tmp|old)-(\d+)")
    removed = []
    for entry in path.parent.iterdir():
        m = pattern.fullmatch(entry.name)
        if not m:
            continue
        pid = int(m.group(1))
        # our own pid is stale too: an earlier process that had this pid left it, since
        # this process creates its temporary only after this cleanup
        if pid != os.getpid() and pid_alive(pid):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every regular file and directory under `root` (bottom-up), then `root`."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                _fsync(p)
        _fsync(Path(dirpath))


@contextlib.contextmanager
def atomic_dir(path, keep_existing: bool = False):
    """Yield a temporary directory that replaces `path` only if the block succeeds.

    With `keep_existing` (entries named by their content, which concurrent writers
    compute alike) a `path` that exists by then is kept and the new one dropped: a reader
    of the first writer's entry never finds it moved away under it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = _tmp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_existing:
        try:
            os.replace(tmp, path)    # fails if another writer's entry is there (not empty)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        _fsync(path.parent)
    elif path.exists():
        old = _tmp_sibling(path, "old")
        os.replace(path, old)
        os.replace(tmp, path)
        _fsync(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
        _fsync(path.parent)


@contextlib.contextmanager
def atomic_file(path, mode="w"):
    """Yield an open temporary file that is renamed onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path, obj) -> None:
    with atomic_file(path) as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
