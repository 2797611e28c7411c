"""The report page: built from a small but complete set of stage outputs, opened from disk
in headless Chromium (playwright-core + Debian's chromium), every table and image present
and decoded, no network request, provenance from dvc.lock; screenshot saved."""
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from fer.edge.tfjs import WEB
from fer.evaluate.page import build, markdown_to_html
from fer.core.params import compose
from fer.core.tracking import metric_key

from needs import APT_CHROMIUM, APT_NODE, NPM_WEB, chromium, needs, node, web_module

CHROMIUM = chromium()
TABLES = ["datasets", "table2", "table3", "claims", "table6", "table7", "table8", "table9",
          "table10", "baselines"]


def _png(path, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(np.full((24, 32, 3), color, np.uint8)).save(buf, "PNG")
    path.write_bytes(buf.getvalue())


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture()
def outputs(tmp_path, monkeypatch):
    """What `dvc repro` leaves behind, for a 2 x 2 grid, in a temporary repository."""
    p = compose(["profile=demo"])
    p["grid"].update(models=["vgg16", "vgg19"], train_sets=["KDEF_OL", "KDEF_Q"])
    p["gan_quality"]["models"] = ["vgg16", "vgg19"]
    p["gan"]["emotions"] = ["happy", "sad"]
    p["export"]["models"] = {"vgg19": "KDEF_Q"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    t = tmp_path
    table = "| a | b |\n|---|---|\n| 1 | **2** |\n"
    for f in ("reports/datasets.md", "reports/table7_crossval.md",
              "reports/gan/table8.md", "reports/table10.md", "reports/baselines.md"):
        _write(t / f, table)
    for f in ("table2", "table3", "table6", "table9"):
        _write(t / f"reports/tables/{f}.md", table)
    _write(t / "reports/tables/claims.md", "# Claims <measured>\n\n" + table + "\ntext\n")
    for db in p["data"]["databases"]:
        _write(t / f"metrics/crop/{db}.json", json.dumps(
            {"images": 10, "detected": 9, "detection_rate": 0.9, "no_face_policy": "center"}))
    tests = p["grid"]["test_sets"]
    for m in p["grid"]["models"]:
        for s in p["grid"]["train_sets"]:
            hist = {"step1": {"accuracy": [0.2], "val_accuracy": [0.1]},
                    "step2": {"accuracy": [0.3, 0.4], "val_accuracy": [0.2, 0.25]}}
            _write(t / f"metrics/finetune/{m}-{s}.json", json.dumps(
                {"model": m, "train_set": s, "per_seed": [{"seed": 0, "history": hist},
                                                          {"seed": 1, "history": hist}]}))
            for ts in tests:
                _png(t / f"reports/finetune/{m}-{s}/confusion_{metric_key(ts)}.png", (0, 0, 200))
    for r in p["report"]["reference_models"]:
        for ts in tests:
            _png(t / f"reports/baselines/{r}/confusion_{metric_key(ts)}.png", (200, 0, 0))
    _write(t / "reports/ksearch.csv", "k,val_accuracy\n5,0.3\n9,0.4\n")
    _png(t / "reports/augment_grid.png", (0, 200, 0))
    for e in p["gan"]["emotions"]:
        for ep in (10, 20):
            _png(t / f"reports/gan/{e}/epoch_{ep:05d}.png", (90, 90, 90))
        _write(t / f"reports/gan/{e}_kid.csv", "epoch,kid\n10,0.2\n20,0.1\n")
    lock = {"schema": "2.0", "stages": {"aggregate": {
        "cmd": "python -m stages.aggregate",
        "deps": [{"path": "metrics/finetune/vgg16-KDEF_OL.json", "md5": "0123456789abcdef"}],
        "params": {"params.yaml": {"report": {"seed": 0}}},
        "outs": [{"path": "reports/tables", "md5": "fedcba.dir"}]}}}
    _write(t / "dvc.lock", yaml.safe_dump(lock))
    _write(t / "data.dvc", yaml.safe_dump({"outs": [{"md5": "a870c9b5.dir", "path": "data"}]}))
    monkeypatch.chdir(t)
    return p


def test_large_images_are_scaled_small_ones_kept():
    from fer.evaluate.page import fit
    buf = io.BytesIO()
    Image.fromarray(np.zeros((1200, 1800, 3), np.uint8)).save(buf, "PNG")
    assert Image.open(io.BytesIO(fit(buf.getvalue()))).size == (900, 600)
    small = io.BytesIO()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(small, "PNG")
    assert fit(small.getvalue()) == small.getvalue()


def test_markdown_tables_and_escaping():
    h = markdown_to_html("## Title <x>\n\n| A | B |\n|---|---|\n| 1 | **yes** |\n\nnote `code`\n")
    assert "<h4>Title &lt;x&gt;</h4>" in h and "<x>" not in h     # two levels down, escaped
    assert h.count("<table>") == 1 and h.count("<tr>") == 2       # the |---| row is no row
    assert "<th>A</th>" in h and "<td><strong>yes</strong></td>" in h
    assert "<p>note <code>code</code></p>" in h
    # a table right below a paragraph line is a table too (Table 8 is written so)
    assert markdown_to_html("GAN-test:\n| a |\n|---|\n| 1 |").count("<td>1</td>") == 1


def test_page_is_complete_deterministic_and_names_missing_inputs(outputs, tmp_path):
    page = build(outputs)
    assert page == build(outputs)                        # byte-identical rebuild
    assert 'src="http' not in page and "<script" not in page
    assert "a870c9b5.dir" in page                        # the data hash
    assert "provenance: aggregate" in page and "0123456789abcdef" in page
    assert "report.seed = 0" in page
    # the demo's paper backbones have random bases: the page says their numbers are none
    assert ('<strong>Not results:</strong> vgg16, vgg19 have a random base here' in page)
    outputs["models"]["vgg16"]["weights"] = outputs["models"]["vgg19"]["weights"] = "imagenet"
    assert "Not results" not in build(outputs)
    (tmp_path / "reports/gan/sad_kid.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"reports/gan/sad_kid.csv is missing"):
        build(outputs)


def test_page_holds_only_the_parts_the_configuration_has(outputs, tmp_path):
    """Own data: no GAN stages, no reference model, a detect: false database."""
    p = outputs
    p["gan"]["emotions"], p["gan_quality"]["models"] = [], []
    p["gan_quality"]["classifier"] = None
    p["report"]["reference_models"] = []
    db = next(iter(p["data"]["databases"]))
    (tmp_path / f"metrics/crop/{db}.json").write_text(json.dumps(
        {"images": 10, "detect": False, "detected": None, "detection_rate": None,
         "no_face_policy": "center"}))
    shutil.rmtree(tmp_path / "reports/gan")
    shutil.rmtree(tmp_path / "reports/baselines")
    (tmp_path / "reports/baselines.md").unlink()
    page = build(p)
    ids = re.findall(r'<section id="(\w+)"', page)
    assert ids == ["datasets", "table2", "table3", "claims", "table6", "table7", "table9",
                   "table10", "confusion", "curves", "ksearch", "augment"]
    assert f"<td>{db}</td>\n<td>10</td>\n<td>not run (detect: false)</td>" in page


@needs(node(), f"needs node ({APT_NODE})")
@needs(web_module("playwright-core"), f"needs web/node_modules/playwright-core ({NPM_WEB})")
@needs(Path(CHROMIUM).exists(), f"needs Debian's chromium at {CHROMIUM} ({APT_CHROMIUM})")
def test_report_page_in_headless_chromium(outputs, tmp_path):
    from stages import report
    report.main()
    shot = tmp_path / "report.png"
    r = subprocess.run(["node", str(WEB / "report_check.mjs"), "reports/index.html", str(shot)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["title"] == "FER report"
    assert all(u.startswith("file://") for u in res["requests"]) and len(res["requests"]) == 1
    sec = {s["id"]: s for s in res["sections"]}
    assert list(sec) == TABLES + ["confusion", "curves", "ksearch", "augment", "gan"]
    for t in TABLES:
        assert sec[t]["tables"] >= 1 and all(n >= 2 for n in sec[t]["rows"]), t
    assert sec["datasets"]["tables"] == 2 and sec["datasets"]["rows"][1] == 1 + 5  # 5 databases
    images = {k: len(s["images"]) for k, s in sec.items() if s["images"]}
    assert images == {"baselines": 2, "confusion": 8, "curves": 1, "ksearch": 1, "augment": 1,
                      "gan": 1 + 4}
    assert all(i["ok"] for s in res["sections"] for i in s["images"])
    assert sec["table3"]["provenance"] == "provenance: aggregate"
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
