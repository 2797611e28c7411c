"""Execution settings (fer.core.settings) live outside params.yaml: environment over local.yaml
over defaults, bad values named; switching them changes no tracked param."""
import os
import subprocess
import sys

import pytest

from fer.core.params import ROOT, compose
from fer.core.schema import ConfigError, validate
from fer.core.settings import Settings, SettingsError, load


def test_environment_over_local_file_over_defaults(tmp_path):
    assert load({}, tmp_path / "absent.yaml") == Settings()
    local = tmp_path / "local.yaml"
    local.write_text("executor: ray\nray_gpus_per_seed: 0\ncache_dir: /fast/cache\n")
    s = load({}, local)
    assert (s.executor, s.ray_gpus_per_seed, s.cache_dir) == ("ray", 0.0, "/fast/cache")
    s = load({"FER_EXECUTOR": "local", "FER_JOBS": "3", "FER_GPU_MEMORY_GROWTH": "false"},
             local)
    assert (s.executor, s.jobs, s.gpu_memory_growth, s.cache_dir) == \
        ("local", 3, False, "/fast/cache")


def test_bad_settings_name_the_variable_or_file(tmp_path):
    with pytest.raises(SettingsError, match=r"FER_JOBS: 'two' is not a valid int"):
        load({"FER_JOBS": "two"}, tmp_path / "absent.yaml")
    with pytest.raises(SettingsError, match=r"FER_EXECUTOR = 'dask'"):
        load({"FER_EXECUTOR": "dask"}, tmp_path / "absent.yaml")
    local = tmp_path / "local.yaml"
    local.write_text("executer: ray\n")
    with pytest.raises(SettingsError, match=r"local\.yaml: unknown setting\(s\) \['executer'\]"):
        load({}, local)


def test_settings_are_no_params():
    # the keys that used to be tracked are refused, so no stage can depend on them
    params = compose(["profile=demo"])
    for key, value in (("executor", "ray"), ("cache_dir", "x"), ("gpu_memory_growth", True)):
        bad = {**params, "train": {**params["train"], key: value}}
        with pytest.raises(ConfigError, match=f"train.{key}: unknown key"):
            validate(bad)
    # and params.yaml comes out byte-identical whatever the settings say
    def composed(env):
        out = subprocess.run([sys.executable, "-c", "import sys, yaml; from fer.core.params import "
                              "compose; sys.stdout.write(yaml.safe_dump(compose(['profile="
                              "demo'])))"], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), **env}, check=True)
        return out.stdout
    assert composed({}) == composed({"FER_EXECUTOR": "ray", "FER_CACHE_DIR": "/elsewhere",
                                     "FER_GPU_MEMORY_GROWTH": "0", "FER_JOBS": "4"})


def test_ranges_and_what_a_ray_worker_receives(tmp_path, monkeypatch):
    with pytest.raises(SettingsError, match=r"FER_RAY_MAX_RETRIES = -1: expected 0 or more"):
        load({"FER_RAY_MAX_RETRIES": "-1"}, tmp_path / "absent.yaml")
    local = tmp_path / "local.yaml"
    local.write_text("- executor: ray\n")
    with pytest.raises(SettingsError, match="expected a mapping"):
        load({}, local)
    local.write_text("executor: dask\n")
    with pytest.raises(SettingsError, match=r"local\.yaml: executor = 'dask'"):
        load({}, local)
    # a worker has neither the driver's environment nor its local.yaml: it gets the
    # driver's settings as variables, the cache folder absolute
    from fer.core.settings import worker_env
    env = worker_env(load({"FER_CACHE_DIR": "rel/cache", "FER_EXECUTOR": "ray"},
                          tmp_path / "absent.yaml"))
    assert env["FER_EXECUTOR"] == "ray" and env["FER_CACHE_DIR"] == str(ROOT / "rel/cache")
    assert load(env, tmp_path / "absent.yaml") == load(
        {"FER_CACHE_DIR": str(ROOT / "rel/cache"), "FER_EXECUTOR": "ray"}, tmp_path / "x")


@pytest.mark.parametrize("growth", ["0", "1"])
def test_gpu_memory_growth_reaches_tensorflow_in_stages_and_ray_workers(growth, tmp_path):
    # TensorFlow reads TF_FORCE_GPU_ALLOW_GROWTH when it first starts a GPU: a stage
    # process (after importing the executor) and a Ray worker get the setting's value
    env = {k: v for k, v in os.environ.items() if k != "TF_FORCE_GPU_ALLOW_GROWTH"}
    out = subprocess.run([sys.executable, "-c", "import os, stages, fer.train.executor; "
                          "print(os.environ['TF_FORCE_GPU_ALLOW_GROWTH'])"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**env, "PYTHONPATH": str(ROOT), "FER_GPU_MEMORY_GROWTH": growth})
    expected = {"0": "false", "1": "true"}[growth]
    assert out.stdout.strip() == expected, out.stderr
    from fer.core.settings import worker_env
    worker = worker_env(load({"FER_GPU_MEMORY_GROWTH": growth}, tmp_path / "absent.yaml"))
    assert worker["TF_FORCE_GPU_ALLOW_GROWTH"] == expected


def test_a_stage_refuses_bad_settings_before_any_work(tmp_path):
    out = subprocess.run([sys.executable, "-m", "stages.merge"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "FER_JOBS": "0"})
    assert out.returncode != 0 and "FER_JOBS = 0: expected at least 1" in out.stderr
