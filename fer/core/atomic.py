"""Write-then-rename: a killed stage never leaves a half-written output.

`dir/name` is written as `dir/.name.tmp-<pid>`, fsynced and renamed onto `name` (an existing
directory moved aside to `dir/.name.old-<pid>` first); temporaries of dead writers are removed
by the next write of the same name (docs/pipeline.md).
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


def proc_stat(pid) -> list[str]:
    """The fields of /proc/<pid>/stat after "(comm) ": the state letter first, the start
    time (field 22) at [19]; OSError without such a process or without /proc (macOS)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()


def pid_alive(pid: int, started: str = "") -> bool:
    """Whether process `pid` exists and can still run: a zombie (a SIGKILLed stage not yet
    reaped) answers signal 0 but will never finish its output. With `started` (its start
    time, proc_stat), whether it is still that process, not a later one given its pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # exists, owned by someone else
        pass
    if not Path("/proc/self/stat").exists():
        return True                  # no /proc (macOS): signal 0 is all there is
    try:
        stat = proc_stat(pid)
    except FileNotFoundError:
        return False                 # exited and reaped since the signal
    except (OSError, IndexError):
        return True
    return stat[0] not in ("Z", "X") and (not started or stat[19] == started)


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
        # our own pid is stale too: this process creates its temporary after this cleanup
        if not m or int(m[1]) != os.getpid() and pid_alive(int(m[1])):
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
        for dirpath, _, filenames in os.walk(tmp, topdown=False):   # files, then their folder
            for file in (Path(dirpath, name) for name in filenames):
                if file.is_file() and not file.is_symlink():
                    _fsync(file)
            _fsync(Path(dirpath))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = _tmp_sibling(path, "old")
    if keep_existing:
        try:
            os.replace(tmp, path)    # fails if another writer's entry is there (not empty)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    else:
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    _fsync(path.parent)
    shutil.rmtree(old, ignore_errors=True)


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
        tmp.unlink(missing_ok=True)


def write_text(path, data: str | bytes) -> None:
    """`data` written to `path` atomically (bytes in binary mode)."""
    with atomic_file(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
