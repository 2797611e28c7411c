"""Execution settings: where and how the work runs, never what it computes.

Kept out of params.yaml so that changing them (executor, cache folder, jobs) re-runs no
stage; none can change a number (tests/test_settings.py). Each comes from FER_<NAME>, else
the git-ignored `local.yaml` at the repository root (key <name>), else its default; the
table is in docs/scale-out.md.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

ROOT = Path(__file__).resolve().parents[2]
LOCAL_FILE = ROOT / "local.yaml"
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Settings:
    executor: str = "local"
    ray_cpus_per_seed: float = 1.0
    ray_gpus_per_seed: float = 1.0
    ray_max_retries: int = 3
    ray_shared_dir: str | None = None
    cache_dir: str = ".cache/activations"
    gpu_memory_growth: bool = True
    jobs: int = 2


class SettingsError(ValueError):
    pass


def _convert(name: str, kind: type, raw, source: str):
    """`raw` as `kind` by pydantic's lax rules (a bool from 1/0, true/false, yes/no, on/off)."""
    if raw is None or raw == "":
        return None
    try:
        return TypeAdapter(kind).validate_python(raw)
    except ValidationError:
        raise SettingsError(f"{source}: {raw!r} is not a valid {kind.__name__} for "
                            f"{name}") from None


def load(environ=None, local_file: Path = LOCAL_FILE) -> Settings:
    """The settings in force: environment over `local.yaml` over the defaults; a bad value
    is an error naming its variable or file."""
    environ = os.environ if environ is None else environ
    local = {}
    if Path(local_file).is_file():
        local = yaml.safe_load(Path(local_file).read_text()) or {}
        if not isinstance(local, dict):
            raise SettingsError(f"{local_file}: expected a mapping of settings")
        known = [f.name for f in fields(Settings)]
        if unknown := sorted(set(local) - set(known)):
            raise SettingsError(f"{local_file}: unknown setting(s) {unknown}; known: "
                                f"{', '.join(known)}")
    values, sources = {}, {}
    for f in fields(Settings):
        kind = str if f.default is None else type(f.default)
        var = f"FER_{f.name.upper()}"
        for raw, source in ((environ.get(var), var),
                            (local.get(f.name), f"{local_file}: {f.name}")):
            value = _convert(var, kind, raw, source)
            if value is not None:
                values[f.name], sources[f.name] = value, source
                break
    s = Settings(**values)
    for name, ok, expected in (
            ("executor", s.executor in EXECUTORS, f"one of {', '.join(EXECUTORS)}"),
            ("jobs", s.jobs >= 1, "at least 1"),
            ("ray_cpus_per_seed", s.ray_cpus_per_seed > 0, "more than 0"),
            ("ray_gpus_per_seed", s.ray_gpus_per_seed >= 0, "0 or more"),
            ("ray_max_retries", s.ray_max_retries >= 0, "0 or more")):
        if not ok:
            where = sources.get(name, f"FER_{name.upper()} (default)")
            raise SettingsError(f"{where} = {getattr(s, name)!r}: expected {expected}")
    return s


def tensorflow_env(s: Settings | None = None) -> dict:
    """What TensorFlow reads from the environment when it first starts a GPU, as the settings
    have it: memory growth (gpu_memory_growth)."""
    s = s or load()
    return {"TF_FORCE_GPU_ALLOW_GROWTH": str(s.gpu_memory_growth).lower()}


def worker_env(s: Settings | None = None) -> dict:
    """The driver's settings as FER_* variables for a Ray worker, which has neither the
    driver's environment nor its local.yaml (the cache folder made absolute), and what they
    tell TensorFlow."""
    s = s or load()
    absolute = replace(s, cache_dir=str((ROOT / s.cache_dir).resolve()))
    return {**{f"FER_{k.upper()}": str(v) for k, v in asdict(absolute).items() if v is not None},
            **tensorflow_env(s)}
