"""params.yaml: compose it from conf/ as `dvc exp run` does (`python -m fer.core.params
[profile=demo ...]`), and read it in stages (never @hydra.main); both check it against
fer.core.schema first. With FER_PARAMS_LOG=<file>, load_params logs every key a stage
reads (tests/test_dvc_deps.py compares them with dvc.yaml's params).
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import yaml

from fer.core.atomic import write_text
from fer.core.schema import ConfigError, validate

ROOT = Path(__file__).resolve().parents[2]
PARAMS_LOG_ENV = "FER_PARAMS_LOG"


def load_params(path="params.yaml") -> dict:
    """The composed parameters, validated (relative weights paths are looked up next to
    params.yaml: the repository root, where DVC runs stages)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run `python -m fer.core.params` to compose it")
    with open(path) as f:
        params = yaml.safe_load(f)
    validate(params, str(path), root=path.parent)
    log = os.environ.get(PARAMS_LOG_ENV)
    return RecordingDict(params, log) if log else params


class RecordingDict(dict):
    """A dict that appends the dotted path of every value read from it to a log file."""

    def __init__(self, data=(), log=None, prefix=""):
        super().__init__(data)
        self._log, self._prefix = log, prefix

    def _record(self, path: str) -> None:
        with open(self._log, "a") as f:
            f.write(f"{path}\n")

    def _record_keys(self) -> None:
        """The set of keys was read (`in`, len, iteration): the whole mapping counts."""
        if self._prefix:
            self._record(self._prefix[:-1])

    def __getitem__(self, key):
        value = super().get(key)
        if isinstance(value, dict):
            return RecordingDict(value, self._log, f"{self._prefix}{key}.")
        self._record(f"{self._prefix}{key}")       # a missing key too, before its KeyError
        return super().__getitem__(key)

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key):
        self._record_keys()
        return super().__contains__(key)

    def __len__(self):
        self._record_keys()
        return super().__len__()

    def keys(self):
        self._record_keys()
        return list(super().keys())

    def __iter__(self):           # not dict's own iterator: dict(d), {**d} call __getitem__
        return iter(self.keys())

    def items(self):
        return [(k, self[k]) for k in self.keys()]

    def values(self):
        return [self[k] for k in self.keys()]


def compose(overrides=(), output=None) -> dict:
    """Compose conf/ with Hydra overrides exactly as DVC does, check it, and only then
    write it to `output` (a rejected configuration leaves `output` untouched)."""
    import tempfile

    from dvc.utils.hydra import compose_and_dump

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "params.yaml"
        compose_and_dump(out, str(ROOT / "conf"), None, "config", str(Path(tmp) / "plugins"),
                         list(overrides))
        text = out.read_text()
    params = yaml.safe_load(text)
    validate(params, "composed configuration", root=Path(output).parent if output else ROOT)
    if output:
        write_text(output, text)
    return params


def hydra_message(error: Exception) -> str:
    """Hydra's error on one line, without the config search path it appends."""
    text = str(error).split("Config search path:")[0].strip()
    text = re.sub(r":\n\t", ": ", text)           # "Available options in 'profile':"
    text = re.sub(r"\n\t", ", ", text)            # ... one option per line
    return re.sub(r"\.?\s*\n\s*", "; ", text)


def main(argv=None) -> int:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    argv = sys.argv[1:] if argv is None else argv
    try:
        params = compose(argv, output=ROOT / "params.yaml")
    except (HydraException, OmegaConfBaseException) as e:
        print(f"fer.core.params: {hydra_message(e)}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"fer.core.params: {e}\nparams.yaml left unchanged.", file=sys.stderr)
        return 2
    print(f"params.yaml composed from conf/ (profile={params['profile']['name']}; "
          f"overrides: {' '.join(argv) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
