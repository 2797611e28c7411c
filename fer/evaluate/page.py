"""reports/index.html: every table, figure and curve of the pipeline on one self-contained
page (images inlined, no script, no network), each section with the DVC stage, params and
dependency hashes it came from (dvc.lock). A missing input is an error naming the file.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from markdown_it import MarkdownIt
from matplotlib.figure import Figure

from fer.core.tracking import flat, metric_key

CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:12px}td,th{border:1px solid #bbb;
padding:2px 6px;text-align:left}th{background:#eef}img{max-width:100%;border:1px solid #ddd;
margin:4px}section{border-top:2px solid #ccd;margin-top:1.6em}details{font-size:12px;color:#555}
code{font-size:11px}nav a{margin-right:.8em}
.figs{display:flex;flex-wrap:wrap;align-items:flex-start}
figure{margin:4px}figcaption{font-size:11px;color:#555}
.warn{background:#fff3cd;border:1px solid #e0c36a;padding:.5em .8em}"""


@dataclass
class Section:
    id: str
    title: str
    sources: list                   # files the section shows or is computed from
    tables: list = field(default_factory=list)     # Markdown / HTML strings
    images: list = field(default_factory=list)     # (caption, png bytes)


def need(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"report: {path} is missing (run its stage first: `dvc repro`)")
    return path


# the Markdown the stages write; raw HTML in it is escaped
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_to_html(md: str) -> str:
    """`md` as HTML, its headings two levels down (h1 is the page's, h2 a section's)."""
    tokens = MARKDOWN.parse(md)
    for t in tokens:
        if t.type in ("heading_open", "heading_close"):
            t.tag = f"h{min(int(t.tag[1]) + 2, 6)}"
    return MARKDOWN.renderer.render(tokens, MARKDOWN.options, {})


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
    return buf.getvalue()


CURVE_KEYS = ("accuracy", "loss", "val_accuracy", "val_loss")


def training_curves_csv(cells: list[dict]) -> str:
    """Every cell's per-epoch history, one row per (cell, seed, epoch), for `dvc plots`:
    epoch counts on from step 1 into step 2, as the MLflow child runs' step numbers do."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["cell", "seed", "step", "epoch", *CURVE_KEYS])
    for c in cells:
        for r in c["per_seed"]:
            epoch = 0
            for step in ("step1", "step2"):
                h = r["history"][step]
                for i in range(len(h.get("loss", h.get("accuracy", [])))):
                    epoch += 1
                    w.writerow([f"{c['model']}-{c['train_set']}", r["seed"], step, epoch,
                                *(repr(h[k][i]) if k in h else "" for k in CURVE_KEYS)])
    return buf.getvalue()


def training_curves_png(cells: list[dict], models: list, train_sets: list) -> bytes:
    """Per cell (rows: train sets, columns: backbones) the per-epoch train (dashed) and
    validation (solid) accuracy of every seed, step 1 then step 2."""
    fig = Figure(figsize=(3.2 * len(models), 2.4 * len(train_sets)))
    axes = fig.subplots(len(train_sets), len(models), squeeze=False, sharey=True)
    by = {(c["model"], c["train_set"]): c for c in cells}
    for i, t in enumerate(train_sets):
        for j, m in enumerate(models):
            ax = axes[i][j]
            for k, r in enumerate(by[(m, t)]["per_seed"]):
                h = r["history"]
                for key, style in (("accuracy", "--"), ("val_accuracy", "-")):
                    y = h["step1"].get(key, []) + h["step2"].get(key, [])
                    if y:
                        ax.plot(range(1, len(y) + 1), y, style, color=f"C{k}", lw=1)
                ax.axvline(len(h["step1"].get("accuracy", [])) + 0.5, color="#999", lw=0.5)
            ax.set_title(f"{m} / {t}", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.supxlabel("epoch (step 1 | step 2); dashed train, solid validation; colour = seed",
                  fontsize=8)
    fig.supylabel("accuracy", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def curves_png(series: dict, xlabel: str, ylabel: str) -> bytes:
    """One line per name from {name: (x, y)}."""
    fig = Figure(figsize=(6, 3.4))
    ax = fig.subplots()
    for name, (x, y) in series.items():
        ax.plot(x, y, marker=".", label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _read_xy(path, x: str, y: str):
    rows = list(csv.DictReader(need(path).open()))
    return [float(r[x]) for r in rows], [float(r[y]) for r in rows]


def _crop_row(db: str, c: dict) -> str:
    if c["detection_rate"] is None:                       # detect: false
        return f"| {db} | {c['images']} | not run (detect: false) | — | — | — |"
    return (f"| {db} | {c['images']} | {c['detected']} | {c['detection_rate'] * 100:.1f} | "
            f"{c.get('out_of_frame_share', 0) * 100:.1f} | {c['no_face_policy']} |")


def sections(params: dict) -> list[Section]:
    """Every section of the page, in reading order, from the files the stages wrote; only
    the parts this configuration has (no GAN section without GAN stages, ...)."""
    grid, tests = params["grid"], params["grid"]["test_sets"]
    cells = [f"{m}-{t}" for t in grid["train_sets"] for m in grid["models"]]
    dbs = list(params["data"]["databases"])
    tables = Path("reports/tables")
    crop_rows = ["| database | images | detected | detection rate (%) | best box out of frame "
                 "(% of images, rejected) | no-face policy |", "|---|---|---|---|---|---|"]
    crop_rows += [_crop_row(db, json.loads(need(f"metrics/crop/{db}.json").read_text()))
                  for db in dbs]
    cell_records = [json.loads(need(f"metrics/finetune/{c}.json").read_text()) for c in cells]
    refs = params["report"]["reference_models"]
    emotions = params["gan"]["emotions"]
    out = [
        Section("datasets", "Datasets (paper Table 1) and face detection rates",
                ["reports/datasets.md"] + [f"metrics/crop/{db}.json" for db in dbs],
                [need("reports/datasets.md").read_text(), "\n".join(crop_rows)]),
        Section("table2", "Table 2: backbones", [tables / "table2.md"]),
        Section("table3", "Table 3: cross-database accuracy, intervals, reference rows",
                [tables / "table3.md"]),
        Section("claims", "Claims, tested", [tables / "claims.md"]),
        Section("table6", "Table 6: per-class precision and recall", [tables / "table6.md"]),
        Section("table7", "Table 7: cross-validation", ["reports/table7_crossval.md"]),
    ]
    if params["gan_quality"]["models"] or params["gan_quality"]["classifier"]:
        out.append(Section("table8", "Table 8: GAN images classified",
                           ["reports/gan/table8.md"]))
    out += [
        Section("table9", "Table 9: seconds per epoch", [tables / "table9.md"]),
        Section("table10", "Table 10: edge inference", ["reports/table10.md"]),
    ]
    if refs:
        out.append(Section(
            "baselines", "Reference models (not trained here)",
            ["reports/baselines.md"] + [f"reports/baselines/{r}" for r in refs],
            [need("reports/baselines.md").read_text()],
            images=[(f"{r} on {t}",
                     need(f"reports/baselines/{r}/confusion_{metric_key(t)}.png").read_bytes())
                    for r in refs for t in tests]))
    out += [
        Section("confusion", "Confusion matrices of each cell's selected seed",
                [f"reports/finetune/{c}" for c in cells],
                images=[(f"{c} on {t}",
                         need(f"reports/finetune/{c}/confusion_{metric_key(t)}.png").read_bytes())
                        for c in cells for t in tests]),
        Section("curves", "Per-epoch training curves",
                [f"metrics/finetune/{c}.json" for c in cells],
                images=[("accuracy per epoch, every cell and seed",
                         training_curves_png(cell_records, grid["models"], grid["train_sets"]))]),
        Section("ksearch", "k search (section 4.3)", ["reports/ksearch.csv"],
                images=[("validation accuracy vs k", curves_png(
                    {params["model"]["name"]: _read_xy("reports/ksearch.csv", "k", "val_accuracy")},
                    "k (trainable base layers)", "validation accuracy"))]),
        Section("augment", "Offline augmentation (each original beside its copies)",
                ["reports/augment_grid.png"],
                images=[("augmentation grid", need("reports/augment_grid.png").read_bytes())]),
    ]
    if emotions:
        out.append(Section(
            "gan", "GAN sample grids and KID curves",
            [f"reports/gan/{e}" for e in emotions] + [f"reports/gan/{e}_kid.csv" for e in emotions],
            images=[("KID per kept checkpoint (lower is better)", curves_png(
                {e: _read_xy(f"reports/gan/{e}_kid.csv", "epoch", "kid") for e in emotions},
                "epoch", "KID"))]
            + [(f"{e}: {p.stem}", p.read_bytes()) for e in emotions
               for p in sorted(need(f"reports/gan/{e}").glob("*.png"))]))
    for s in out:
        if not s.tables and not s.images:
            s.tables = [need(s.sources[0]).read_text()]
    return out


def lock_index() -> dict:
    """{output path: (stage name, stage lock entry)} from dvc.lock (empty if absent)."""
    p = Path("dvc.lock")
    stages = (yaml.safe_load(p.read_text()) or {}).get("stages", {}) if p.is_file() else {}
    return {o["path"]: (name, st) for name, st in stages.items() for o in st.get("outs", [])}


def provenance_html(sources: list, index: dict) -> str:
    """Each stage that produced `sources` (`index`: `lock_index`) with its params and
    dependency hashes."""
    found = {}                          # stage name -> its dvc.lock entry, in source order
    for src in map(str, sources):
        hit = next(((n, st) for path, (n, st) in index.items()
                    if src == path or src.startswith(path.rstrip("/") + "/")), None)
        if hit:
            found.setdefault(*hit)
    if not found:
        return ("<details><summary>provenance</summary>not recorded in dvc.lock (run the "
                "pipeline with <code>dvc repro</code>)</details>")
    parts = []
    for n, st in found.items():
        values = {k: v for f in st.get("params", {}).values() for k, v in flat(f).items()}
        hashes = {d["path"]: d.get("md5", "") for d in st.get("deps", [])}
        params = "; ".join(f"{k} = {json.dumps(v, sort_keys=True)}" for k, v in values.items())
        deps = "<br>".join(f"<code>{html.escape(k)}</code> md5 {v}" for k, v in hashes.items())
        parts.append(f"<p><strong>stage {html.escape(n)}</strong><br>params: "
                     f"<code>{html.escape(params) or 'none'}</code><br>{deps}</p>")
    return ("<details><summary>provenance: " + ", ".join(found) + "</summary>"
            + "".join(parts) + "</details>")


MAX_PX = 900      # longest side of an inlined image: keeps the paper-scale page small


def fit(png: bytes) -> bytes:
    """The PNG itself, or a copy scaled so its longest side is MAX_PX."""
    from PIL import Image
    im = Image.open(io.BytesIO(png))
    if max(im.size) <= MAX_PX:
        return png
    im.thumbnail((MAX_PX, MAX_PX), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def random_base_warning(params: dict) -> str:
    """A banner naming the grid's backbones with a fixed random base (the demo's stand-in
    for ImageNet weights), whose numbers only show that the pipeline runs; or ''."""
    random = [m for m in params["grid"]["models"]
              if str(params["models"][m]["weights"]) == "fixed_random"]
    if not random:
        return ""
    return ('<p class="warn"><strong>Not results:</strong> ' + ", ".join(random)
            + (" has" if len(random) == 1 else " have") + " a random base here (<code>weights: "
            "fixed_random</code>, no pretrained weights), so " + ("its" if len(random) == 1
            else "their") + " accuracies sit at chance and only show that the pipeline runs. "
            "Backbones trained from scratch (<code>weights: none</code>) do learn.</p>")


def build(params: dict) -> str:
    """The page, from the stage outputs in the working directory."""
    data = Path("data.dvc")
    data_md5 = (yaml.safe_load(data.read_text())["outs"][0]["md5"] if data.is_file()
                else "not recorded")
    secs, index = sections(params), lock_index()
    nav = " ".join(f'<a href="#{s.id}">{html.escape(s.title.split(":")[0])}</a>' for s in secs)
    body = []
    for s in secs:
        figs = "".join(f'<figure><img alt="{html.escape(cap)}" src="data:image/png;base64,'
                       f'{base64.b64encode(fit(png)).decode()}"><figcaption>{html.escape(cap)}'
                       "</figcaption></figure>" for cap, png in s.images)
        body.append(f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>'
                    + "".join(markdown_to_html(t) for t in s.tables)
                    + (f'<div class="figs">{figs}</div>' if figs else "")
                    + provenance_html(s.sources, index) + "</section>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>FER report</title><style>" + CSS + "</style></head><body>"
            f"<h1>FER with offline and GAN data augmentation: report</h1>"
            f"<p>Profile <strong>{html.escape(params['profile']['name'])}</strong>; data "
            f"(<code>data.dvc</code>) md5 <code>{html.escape(data_md5)}</code>. Every section "
            "says which DVC stage produced it, with the parameters and dependency hashes "
            "recorded in <code>dvc.lock</code>.</p>" + random_base_warning(params)
            + "<nav>" + nav + "</nav>"
            + "\n".join(body) + "</body></html>\n")
