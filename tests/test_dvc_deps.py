"""dvc.yaml declares everything a stage's result depends on: every project module it
imports (a code change re-runs it), every param it reads (a param change re-runs it),
and the weights files it loads (new bytes re-run exactly the stages that load them)."""
import ast
import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from fer.data.labels import EMOTIONS
from fer.core.params import PARAMS_LOG_ENV, ROOT, compose

from needs import NPM_WEB, need

TFJS_STAGES = f"needs web/node_modules/@tensorflow: the TF.js stages cannot run ({NPM_WEB})"


@functools.cache
def dvc_stages(root=ROOT) -> dict:
    """{stage name: (cmd, file deps, declared params)} with dvc.yaml's templating,
    foreach and matrix resolved by DVC itself."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {s.name: (s.cmd, [d.def_path for d in s.deps
                                       if not isinstance(d, ParamsDependency)],
                               [p for d in s.deps if isinstance(d, ParamsDependency)
                                for p in d.params])
                for s in repo.index.stages if s.cmd}


def _module_file(name: str):
    """The repository file of module `name` (a package's __init__.py), or None."""
    path = ROOT / Path(*name.split("."))
    for f in (path.with_suffix(".py"), path / "__init__.py"):
        if f.is_file():
            return f
    return None


def _holds_code(path: Path) -> bool:
    return not all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                   for n in ast.parse(path.read_text()).body)


def project_imports(module: str) -> set[str]:
    """Repository files of `module` and of every project module it imports, transitively
    (also imports inside functions, and the packages' __init__.py that Python runs on
    the way, when they hold code); third-party modules are not followed."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        todo += [name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)]
        path = _module_file(name)
        if path is None or path in seen:
            continue
        if path.name == "__init__.py" and not _holds_code(path):
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name.rsplit(".", node.level)[0]
                    base = f"{package}.{base}" if base else package
                todo += [base] + [f"{base}.{a.name}" for a in node.names]
    return {str(p.relative_to(ROOT)) for p in seen}


def test_a_package_init_with_code_is_followed(tmp_path):
    # stages/__init__.py runs before every stage (it quiets TensorFlow): a dependency
    assert "stages/__init__.py" in project_imports("stages.crop")
    assert "fer/core/quiet.py" in project_imports("stages.crop")
    assert "fer/__init__.py" not in project_imports("stages.crop")     # docstring only


def test_every_stage_depends_on_exactly_the_modules_it_imports():
    problems = []
    for name, (cmd, files, _) in dvc_stages().items():
        module = cmd.split()[2]                   # python -m stages.<x> ...
        assert cmd.startswith("python -m stages."), cmd
        code = project_imports(module)
        declared = {f for f in files if f.endswith(".py")}
        if code - declared:
            problems.append(f"{name}: imports {sorted(code - declared)}, not in its deps")
        if declared - code:
            problems.append(f"{name}: deps {sorted(declared - code)} are never imported")
    assert not problems, "\n".join(problems)


# -- params each stage reads, recorded while every stage runs on tiny data -------------

def _noise_folders(root: Path, per_class: int, seed: int, size=40, only=None) -> None:
    """`<emotion>/<file>.png` noise images (every emotion, or `only` in `root` itself)."""
    rng = np.random.default_rng(seed)
    for e in EMOTIONS if only is None else [only]:
        folder = root / e if only is None else root
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                folder / f"{e}{i}.png")


def _tiny_params() -> dict:
    p = compose(["profile=demo"])
    p["data"]["databases"] = {
        "kdef": {"kind": "folders", "name": "KDEF", "path": "data/kdef", "require_all": True},
        "ck": {"kind": "folders", "name": "CK+", "path": "data/ck", "require_all": True}}
    p["crop"].update(size=32, workers=1)
    p["augment"]["copies"] = 1
    p["gan"].update(emotions=["angry"], extra_source="kdef", epochs=2, batch_size=4, sample_every=1, keep_from=1, keep_every=1,
                    kid_images=4, n_generate=7, kid_features="pixels")
    p["merge"] = {"train_sets": {"KDEF_OL": ["kdef", "kdef_da_ol"], "KDEF_Q": ["kdef", "gan_q"]},
                  "test_sets": {"CK+": ["ck"]}}
    p["grid"] = {"models": ["vgg16"], "train_sets": ["KDEF_OL"], "test_sets": ["CK+"]}
    p["model"]["name"] = "vgg16"
    p["train"].update(epochs_step1=1, epochs_step2=1, seeds=1, batch_size=16, max_images=None,
                      select_on="CK+")
    p["ksearch"].update(train_set="KDEF_OL", holdout=0.5, max_images=None,
                        k_values={"vgg16": [1]})
    p["crossval"].update(sets=["KDEF_OL", "CK+"], folds=2, models=["vgg16"], max_images=None)
    p["gan_quality"].update(train_set="KDEF_OL", gan_set="KDEF_Q", models=["vgg16"],
                            classifier="vgg16", epochs=1)
    p["export"].update(models={"vgg16": "KDEF_OL"}, variants=["float32", "uint8"])
    p["edge"] = {"runs": 1, "warmup": 1, "runtimes": [
        {"where": "node", "backend": "wasm", "accuracy": True},
        {"where": "node", "backend": "cpu", "accuracy": False}]}
    return p


def _runs():
    """(dvc stage name, how to run it in-process), in DAG order."""
    from stages import (aggregate, augment, baselines, crop, crossval, edge_eval, export_tfjs,
                        finetune, gan, gan_quality, import_data, ksearch, merge, report)
    return [("import@kdef", lambda: import_data.main("kdef")),
            ("import@ck", lambda: import_data.main("ck")),
            ("crop@kdef", lambda: crop.main("kdef")), ("crop@ck", lambda: crop.main("ck")),
            ("augment", augment.main), ("gan@angry", lambda: gan.main("angry")),
            ("merge", merge.main), ("baselines", baselines.main), ("finetune@vgg16-KDEF_OL",
                                    lambda: finetune.main("vgg16", "KDEF_OL")),
            ("aggregate", aggregate.main), ("ksearch", ksearch.main),
            ("crossval", crossval.main), ("gan_quality", gan_quality.main),
            ("export@vgg16", lambda: export_tfjs.main("vgg16")), ("edge_eval", edge_eval.main),
            ("report", report.main)]


@pytest.fixture(scope="module")
def params_read(tmp_path_factory):
    """{stage: set of dotted param paths it read}, every stage run on tiny data (and
    "edge rows": the (model, location) rows edge_eval wrote)."""
    tmp = tmp_path_factory.mktemp("tiny")
    _noise_folders(tmp / "data/kdef", 4, 0)
    _noise_folders(tmp / "data/ck", 2, 1)
    (tmp / "params.yaml").write_text(yaml.safe_dump(_tiny_params()))
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    mp.setenv("FER_CONCURRENT_STAGES", "2")      # as under fer.train.parallel_repro -j 2
    reads = {}
    try:
        for stage, run in _runs():
            if stage in ("baselines", "edge_eval", "report") and \
                    not (ROOT / "web/node_modules/@tensorflow").is_dir():
                continue                          # no TF.js here: checked by the static test
            log = tmp / f"{stage}.reads"
            mp.setenv(PARAMS_LOG_ENV, str(log))
            run()
            reads[stage] = set(log.read_text().split())
            if stage == "edge_eval":
                reads["edge rows"] = [(r["model"], r["location"]) for r in json.loads(
                    (tmp / "metrics/edge.json").read_text())]
            timed = {"aggregate": "reports/tables/table9.md", "baselines": "reports/baselines.md",
                     "edge_eval": "reports/table10.md"}
            if stage in timed:
                reads[f"{stage} table"] = (tmp / timed[stage]).read_text()
    finally:
        mp.undo()
    return reads


def test_edge_table_keeps_variant_then_runtime_order(params_read):
    """Each runtime runs every variant in one process; Table 10 still lists the rows
    variant by variant, runtimes in their configured order, after the Keras row."""
    need("edge rows" in params_read, TFJS_STAGES)
    assert params_read["edge rows"][:5] == [
        ("vgg16 on KDEF_OL (Keras)", "server (Python TF, this machine)"),
        ("vgg16_JS_float32", "node (wasm)"), ("vgg16_JS_float32", "node (cpu)"),
        ("vgg16_JS_uint8", "node (wasm)"), ("vgg16_JS_uint8", "node (cpu)")]


def test_tables_of_measured_times_say_the_stages_shared_the_machine(params_read):
    """Stages run two at a time: Table 9's epoch seconds, the baselines' and Table 10's
    latencies each carry the line saying so."""
    tables = {k: v for k, v in params_read.items() if k.endswith(" table")}
    assert "aggregate table" in tables
    for name, text in tables.items():
        assert "Measured with up to 2 stages running side by side" in text, name


def test_every_stage_of_dvc_yaml_is_exercised():
    assert {s.split("@")[0] for s in dvc_stages()} == {s.split("@")[0] for s, _ in _runs()}


def _undeclared(read: set, declared: list) -> list:
    return sorted(p for p in read if not any(p == d or p.startswith(d + ".") for d in declared))


@pytest.mark.slow          # every stage on tiny data: about 60 s on an idle 2-core machine
@pytest.mark.parametrize("stage", [s for s, _ in _runs()])
def test_stage_declares_every_param_it_reads(stage, params_read):
    need(stage in params_read, TFJS_STAGES)
    stages = dvc_stages()
    if stage in stages:
        declared = stages[stage][2]
    else:        # a foreach entry the repository's params.yaml does not list (export@vgg16)
        kind, key = stage.split("@")
        other = next(s for s in stages if s.startswith(kind + "@")).split("@")[1]
        declared = [p.replace(other, key) for p in stages[f"{kind}@{other}"][2]]
    assert params_read[stage], f"{stage} read no params at all?"
    assert _undeclared(params_read[stage], declared) == [], \
        f"{stage} reads params missing from its dvc.yaml params {declared}"


# -- weights files: new bytes make exactly the stages that load them stale --------------

def _run(cmd, cwd):
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _stale(repo: Path) -> set:
    dvc = Path(sys.executable).parent / "dvc"
    return set(json.loads(_run([dvc, "status", "--json"], repo) or "{}"))


@pytest.mark.slow          # `dvc commit` + 3 `dvc status` over ~60 stages: about 45 CPU s
def test_new_weights_bytes_make_exactly_their_stages_stale(tmp_path):
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    repo = tmp_path / "repo"
    for f in files:
        if (ROOT / f).is_file() and not f.startswith(("data/", "build/")) and f != "dvc.lock":
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, repo / f)
    (repo / "weights/vgg16/notop.h5").write_bytes(b"vgg16 weights")
    (repo / "kid_weights/inception.h5").write_bytes(b"kid weights")
    compose(["models.vgg16.weights=weights/vgg16/notop.h5",
             "++gan.kid_weights=kid_weights/inception.h5"], output=repo / "params.yaml")
    _run(["git", "init", "-q"], repo)
    # every stage's deps and outs as stand-in files, recorded as up to date in dvc.lock
    stages = dvc_stages(repo)
    from dvc.repo import Repo
    with Repo(str(repo)) as r:
        paths = {str(o.def_path) for s in r.index.stages if s.cmd for o in s.outs}
    paths |= {f for _, deps, _ in stages.values() for f in deps}
    for p in sorted(paths):
        if not (repo / p).exists() and not any(q.startswith(p + "/") for q in paths):
            (repo / p).parent.mkdir(parents=True, exist_ok=True)
            (repo / p).write_text(p)
    _run([Path(sys.executable).parent / "dvc", "commit", "-f", "-q"], repo)
    assert _stale(repo) == set()

    (repo / "weights/vgg16/notop.h5").write_bytes(b"other vgg16 weights")
    assert _stale(repo) == {f"finetune@vgg16-{t}" for t in stages_train_sets(stages)} | \
        {"crossval"}
    (repo / "weights/vgg16/notop.h5").write_bytes(b"vgg16 weights")      # back: clean again
    (repo / "kid_weights/inception.h5").write_bytes(b"other kid weights")
    assert _stale(repo) == {f"gan@{e}" for e in EMOTIONS}
    (repo / "kid_weights/inception.h5").write_bytes(b"kid weights")
    # a change in fer/edge re-runs the stages that export or run models in the browser,
    # never a GAN nor a grid cell
    with open(repo / "fer/edge/tfjs.py", "a") as f:
        f.write("# edited\n")
    stale = _stale(repo)
    assert stale and not {s for s in stale if s.startswith(("gan@", "finetune@", "import@",
                                                            "crop@"))}, stale
    assert stale == {n for n, (_, deps, _) in stages.items() if "fer/edge/tfjs.py" in deps}


def stages_train_sets(stages: dict) -> list:
    return sorted(n.split("-", 1)[1] for n in stages if n.startswith("finetune@vgg16-"))
