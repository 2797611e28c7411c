"""The schema of params.yaml: every key's type and range (strict pydantic models; unknown
keys are errors) and the rules between keys (`cross_field_problems`), all reported at once.

A section's model is also what its stage hands the library (fer.data.crop takes a `Crop`).
No keras here (light stages): the backbones' table is checked against keras by
tests/test_config.py.
"""
from __future__ import annotations

import functools
import re
import typing
from pathlib import Path, PurePosixPath
from typing import Literal, Optional

from pydantic import (BaseModel, ConfigDict, Field, TypeAdapter, ValidationError,
                      field_validator, model_validator)


# caffe (RGB->BGR, minus ImageNet means) | scale01 (x/255) | tf (x/127.5 - 1) |
# per_image (zero mean, unit variance): fer.train.backbones.Normalize
PREPROCESS = ("caffe", "scale01", "tf", "per_image")
# index = class id everywhere (fer.data.labels maps every database's codes to these)
EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1")   # what every result reports


class Backbone(typing.NamedTuple):
    layers: int      # len(base.layers) of keras.applications.<Net>(include_top=False)
    min_size: int    # smallest input Keras accepts, in px


BACKBONES = {
    "vgg16": Backbone(layers=19, min_size=32),
    "vgg19": Backbone(layers=22, min_size=32),
    "inception_v3": Backbone(layers=311, min_size=75),
    "inception_resnet_v2": Backbone(layers=780, min_size=75),
    "mini_xception": Backbone(layers=43, min_size=16),    # fer.train.backbones.mini_xception
}
# `models.<m>.weights` values that name no file (fer.train.backbones.build_base says what each is).
NAMED_WEIGHTS = ("imagenet", "none", "fixed_random")
CLASS_POLICIES = ("skip", "fail")     # an image labelled outside the seven: skip it or fail
# Local weights files live under weights/<name>/ (`dvc add`ed; the stages loading them
# depend on that folder), the KID extractor's under kid_weights/ (crossval depends on weights/).
WEIGHTS_DIR = "weights"
KID_WEIGHTS_DIR = "kid_weights"


class Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


PositiveInt = typing.Annotated[int, Field(ge=1)]
Fraction = typing.Annotated[float, Field(ge=0, lt=1)]
MaxImages = Optional[typing.Annotated[int, Field(ge=len(EMOTIONS))]]   # one per emotion at least


class Database(Section):
    """Options every database kind has; each kind below adds its own."""
    path: str = Field(min_length=1)
    require_all: bool = True           # fail unless all seven emotions are present
    detect: bool = True                # crop stage: run face detection (false: centre crop)
    pad: Optional[float] = Field(None, ge=0, le=2)   # None: crop.pad
    square: Optional[bool] = None                     # None: crop.square


class Kdef(Database):
    kind: Literal["kdef"]
    frontal_only: bool = True


class Ck(Database):
    kind: Literal["ck"]
    peak_frames: PositiveInt = 3       # the last frames of a sequence get its label
    neutral_frames: int = Field(1, ge=0)   # the first frames are neutral
    class_policy: Literal[CLASS_POLICIES] = "skip"   # contempt


class Jaffe(Database):
    kind: Literal["jaffe"]


class Fer2013(Database):
    kind: Literal["fer2013"]
    usage: Optional[str] = None        # Training / PublicTest / PrivateTest; None: all


def _subject_regex(value: Optional[str]) -> Optional[str]:
    if value is not None:
        try:
            compiled = re.compile(value)
        except re.error as e:
            raise ValueError(f"not a regular expression ({e})") from None
        if "subject" not in compiled.groupindex:
            raise ValueError("has no named group (?P<subject>...)")
    return value


class Folders(Database):
    """`<label>/<file>` folders; subjects from file names by `subject_pattern` (else one per
    file, `unknown_subjects`), `source_*`: faces derived from another database's people."""
    kind: Literal["folders"]
    name: str = Field(min_length=1)    # the database name written into the manifest
    class_policy: Literal[CLASS_POLICIES] = "fail"
    subject_pattern: Optional[str] = None
    source_pattern: Optional[str] = None
    source_database: Optional[str] = None
    unknown_subjects: Literal["per_image", "train_only"] = "per_image"

    _regexes = field_validator("subject_pattern", "source_pattern")(_subject_regex)

    @model_validator(mode="after")
    def _source_pair(self):
        if (self.source_pattern is None) != (self.source_database is None):
            raise ValueError("source_pattern and source_database go together (source_subject"
                             " = <source_database>/<subject matched by source_pattern>)")
        return self


class Csv(Folders):
    """An image folder plus a labels csv inside it, one row per image."""
    kind: Literal["csv"]
    csv: str
    file_column: str = "file"
    label_column: str = "label"
    subject_column: Optional[str] = None   # the person; else subject_pattern / per image

    @field_validator("csv")
    @classmethod
    def _inside(cls, value: str) -> str:
        csv = PurePosixPath(value.replace("\\", "/"))
        if not value.strip() or csv.is_absolute() or ".." in csv.parts or ":" in csv.parts[0]:
            raise ValueError("the labels csv must lie inside the database folder (its path), "
                             "so that DVC tracks it with the images and a label edit re-runs "
                             "the database's stages")
        return value

    @model_validator(mode="after")
    def _one_subject_source(self):
        if self.subject_column is not None and self.subject_pattern is not None:
            raise ValueError("subject_column and subject_pattern both name the subjects; "
                             "keep one")
        return self


KINDS = {m.model_fields["kind"].annotation.__args__[0]: m
         for m in (Kdef, Ck, Jaffe, Fer2013, Folders, Csv)}
AnyDatabase = typing.Annotated[typing.Union[tuple(KINDS.values())], Field(discriminator="kind")]
DATABASE = TypeAdapter(AnyDatabase)


class Data(Section):
    root: str
    databases: dict[str, AnyDatabase] = Field(min_length=1)


class Crop(Section):
    """crop: face detection and standardisation (fer.data.crop)."""
    size: int = Field(ge=8)
    confidence: float = Field(gt=0, le=1)
    no_face: Literal["center", "skip", "fail"]
    margin: float = Field(ge=0)
    square: bool
    workers: PositiveInt
    pad: float = Field(ge=0, le=2)
    frame_tolerance: float = Field(ge=0, le=1)
    min_detection_rate: float = Field(ge=0, le=1)
    max_out_of_frame_share: float = Field(ge=0, le=1)


class Augment(Section):
    """augment: offline augmentation (fer.data.augment)."""
    source: str                        # a database of data.databases
    part: str                          # the merge part its copies form
    copies: PositiveInt
    rotation: float = Field(ge=0, le=0.5)
    zoom: Fraction
    flip: bool
    height: Fraction
    width: Fraction
    contrast: Fraction
    fill_mode: Literal["reflect", "constant", "nearest", "wrap"]
    seed: int = Field(ge=0)
    grid_rows: PositiveInt


class Gan(Section):
    """gan: the per-emotion DCGANs (fer.gan.dcgan, fer.gan.train)."""
    emotions: list[Literal[EMOTIONS]]  # [] when no merge set uses `part`
    source: str                        # databases whose faces the GANs learn from
    extra_source: str
    part: str                          # the merge part the generated images form
    image_size: PositiveInt
    blocks: PositiveInt
    base_filters: PositiveInt
    latent_dim: PositiveInt
    variant: Literal["flatten", "bn_gap"]
    epochs: PositiveInt
    batch_size: PositiveInt
    lr: float = Field(gt=0)
    beta_1: Fraction
    sample_every: PositiveInt
    keep_from: int = Field(ge=1)
    keep_every: PositiveInt
    n_generate: PositiveInt
    kid_features: Literal["pixels", "inception"]
    kid_images: int = Field(ge=2)      # unbiased KID needs two samples per set
    kid_weights: Optional[str] = None  # imagenet | kid_weights/<file>
    seed: int = Field(ge=0)

    @field_validator("blocks")
    @classmethod
    def _divides_image_size(cls, blocks: int, info):
        size = info.data.get("image_size")
        if size is not None and size % 2 ** blocks:
            raise ValueError(f"gan.image_size = {size} is not divisible by 2 ** gan.blocks "
                             f"= {2 ** blocks}")
        return blocks

    @model_validator(mode="after")
    def _inception_needs_weights(self):
        if self.kid_features == "inception" and self.kid_weights is None:
            raise ValueError("gan.kid_features = inception needs gan.kid_weights: imagenet or "
                             f"a no-top .h5 under {KID_WEIGHTS_DIR}/ (or gan.kid_features = "
                             "pixels)")
        return self


class Merge(Section):
    train_sets: dict[str, list[str]] = Field(min_length=1)
    test_sets: dict[str, list[str]] = Field(min_length=1)
    allow_missing_classes: list[str] = []   # train sets that may lack some of the seven


class TrainOverrides(Section):
    """models.<m>.train: the train keys this backbone sets for itself (a backbone trained
    from scratch trains in one step, `epochs_step1: 0`, longer and on every image)."""
    epochs_step1: Optional[int] = Field(None, ge=0)
    epochs_step2: Optional[PositiveInt] = None
    lr_step1: Optional[float] = Field(None, gt=0)
    lr_step2: Optional[float] = Field(None, gt=0)
    lr_decay: Optional[Literal["none", "cosine"]] = None
    batch_size: Optional[PositiveInt] = None
    max_images: MaxImages = None


class Network(Section):
    """The keys of models.<m> that shape the network itself."""
    k: int = Field(ge=0)
    preprocess: Literal[PREPROCESS]
    weights: str                       # imagenet | none | weights/<model>/<file>
    size: Optional[PositiveInt] = None     # the base's input side, resized in the model
    channels: Literal[1, 3] = 3            # 1: grey, converted in the model


class Model(Network):
    train: TrainOverrides = TrainOverrides()


class ModelSpec(Network):
    """One backbone as the library builds it (fer.train.backbones): its models.<name> network
    keys (fer.train.grid.model_spec), named, with the classifier's input side (crop.size).
    Frozen: part of a cell's key (fer.train.finetune.Cell)."""
    model_config = ConfigDict(frozen=True)
    name: str
    input_size: PositiveInt

    @property
    def base_shape(self) -> tuple:
        """The base's input (side, side, channels): resized and greyed inside the model."""
        return (self.size or self.input_size,) * 2 + (self.channels,)

    @model_validator(mode="after")
    def _known_and_large_enough(self):
        if self.name not in BACKBONES:
            raise ValueError(f"unknown backbone {self.name!r}; expected one of "
                             f"{sorted(BACKBONES)}")
        if self.base_shape[0] < BACKBONES[self.name].min_size:
            raise ValueError(f"model {self.name}: input size {self.base_shape[0]} is below "
                             f"the backbone's minimum of {BACKBONES[self.name].min_size} px")
        return self


class Named(Section):
    name: str                          # model: a backbone of models; profile: conf/profile/


class Train(Section):
    """train: two-step fine-tuning and its seeds (fer.train.finetune, fer.train.grid);
    `fer.train.grid.train_spec` merges a backbone's models.<m>.train into it."""
    model_config = ConfigDict(frozen=True)     # part of a cell's key (fer.train.finetune.Cell)
    epochs_step1: PositiveInt
    epochs_step2: PositiveInt
    lr_step1: float = Field(gt=0)
    lr_step2: float = Field(gt=0)
    lr_decay: Literal["none", "cosine"]    # per epoch within each step; none: the paper's
    batch_size: PositiveInt
    seed: int = Field(ge=0)
    seeds: PositiveInt
    max_images: MaxImages = None
    select_on: str                     # 'val' or a test set
    val_fraction: Fraction             # source subjects held out: val curves and selection
    fast_path: bool                    # train on cached frozen activations (fer.train.activations)
    cache_dtype: Literal["float32", "float16"]
    cache_limit_gb: float = Field(gt=0)
    mixed_precision: Literal["off", "mixed_bfloat16", "mixed_float16"]
    jit_compile: bool
    deterministic: bool

    @field_validator("val_fraction")
    @classmethod
    def _val_to_select_on(cls, val_fraction: float, info):
        if info.data.get("select_on") == "val" and val_fraction == 0:
            raise ValueError("train.select_on=val needs train.val_fraction > 0 (held-out "
                             "validation subjects); for the paper's protocol set "
                             "train.select_on=<a test set>")
        return val_fraction


class Grid(Section):
    models: list[str] = Field(min_length=1)
    train_sets: list[str] = Field(min_length=1)
    test_sets: list[str] = Field(min_length=1)


class KSearch(Section):
    train_set: str
    holdout: float = Field(gt=0, lt=1)
    seed: int = Field(ge=0)
    max_images: MaxImages = None
    k_values: dict[str, list[typing.Annotated[int, Field(ge=0)]]]


class CrossVal(Section):
    sets: list[str] = Field(min_length=1)
    folds: int = Field(ge=2)
    seed: int = Field(ge=0)
    models: list[str] = Field(min_length=1)
    max_images: MaxImages = None


class GanQuality(Section):
    train_set: str
    gan_set: str
    models: list[str]                  # [] when no set uses the DCGAN images
    classifier: Optional[str]          # a `models` entry: label fidelity (fer.gan.fidelity)
    holdout: Fraction = Field(gt=0)    # of the GAN source subjects: GAN-train's test
    epochs: PositiveInt
    lr: float = Field(gt=0)
    seed: int = Field(ge=0)


class Export(Section):
    models: dict[str, str] = Field(min_length=1)   # backbone: train set; the first: the web
    variants: list[Literal["float32", "uint16", "uint8", "float16"]] = Field(min_length=1)


class Runtime(Section):
    where: Literal["node", "chromium"]
    backend: Literal["wasm", "webgl", "cpu"]
    accuracy: bool


class Edge(Section):
    runs: PositiveInt
    warmup: PositiveInt                    # batch-1 runs before the timed ones
    max_images: MaxImages = None           # per test set, stratified
    runtimes: list[Runtime] = Field(min_length=1)


class Claim(Section):
    claim: str
    better: str                        # <model>-<train_set>
    worse: str
    test_set: str


class Report(Section):
    level: float = Field(gt=0, lt=1)
    bootstrap_resamples: PositiveInt
    permutation_resamples: PositiveInt
    seed: int = Field(ge=0)
    alpha: float = Field(gt=0, lt=1)
    metric: Literal[HEADLINE]
    reference_models: list[str]
    latency_runs: PositiveInt
    claims: list[Claim]                # claims about cells outside the grid: not evaluated


class Params(Section):
    """params.yaml: one field per top-level key."""
    data: Data
    crop: Crop
    augment: Augment
    gan: Gan
    merge: Merge
    models: dict[str, Model] = Field(min_length=1)
    model: Named
    train: Train
    grid: Grid
    ksearch: KSearch
    crossval: CrossVal
    gan_quality: GanQuality
    export: Export
    edge: Edge
    report: Report
    profile: Named


class ConfigError(ValueError):
    """The configuration breaks one or more rules; `problems` lists them all."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        n = len(problems)
        super().__init__(f"{source}: {n} configuration problem{'s' * (n != 1)}:\n"
                         + "\n".join(f"  {p}" for p in problems))


def validate(params, source: str = "params.yaml", root=".") -> None:
    """Raise ConfigError listing every problem of `params`; `root` is where relative
    weights paths are looked up (the repository root, where stages run)."""
    problems = []
    try:
        Params.model_validate(params)
    except ValidationError as e:
        problems += [_describe(err) for err in e.errors()]
    if isinstance(params, dict):
        problems += cross_field_problems(params, Path(root))
    if problems:
        raise ConfigError(source, problems)


def _describe(err: dict, loc=None) -> str:
    full = tuple(err["loc"] if loc is None else loc)
    shown = [p for i, p in enumerate(full)          # without a database's kind tag
             if not (i == 3 and full[:2] == ("data", "databases") and p in KINDS)]
    key = ".".join(str(p) for p in shown) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{key}: missing (required key)"
    if err["type"] == "extra_forbidden":
        known = _known_keys(full[:-1])
        return f"{key}: unknown key" + (f" (known here: {', '.join(known)})" if known else "")
    if err["type"] == "union_tag_invalid":
        return f"{key}.kind = {err['ctx']['tag']!r}: unknown database kind; expected one of " \
            + ", ".join(KINDS)
    if err["type"] == "union_tag_not_found":
        return f"{key}.kind: missing (required key: one of {', '.join(KINDS)})"
    if err["type"] == "value_error" and isinstance(err["input"], dict):   # a model's rule
        return f"{key}: {msg}"
    return f"{key} = {err['input']!r}: {msg[0].lower()}{msg[1:]}"


def _known_keys(loc) -> list[str]:
    """Field names of the section at `loc` (for the unknown-key message)."""
    node = Params
    for part in (*loc, None):
        while typing.get_origin(node) is typing.Annotated:
            node = typing.get_args(node)[0]
        is_model = isinstance(node, type) and issubclass(node, BaseModel)
        if part is None:
            return list(node.model_fields) if is_model else []
        if typing.get_origin(node) is typing.Union and part in KINDS:
            node = KINDS[part]
        elif typing.get_origin(node) in (dict, list):
            node = typing.get_args(node)[-1]
        elif is_model and part in node.model_fields:
            node = node.model_fields[part].annotation
        else:
            return []


def database(key: str, options: dict) -> Database:
    """`data.databases.<key>` as its kind's model; ConfigError naming every problem."""
    try:
        return DATABASE.validate_python(options)
    except ValidationError as e:
        raise ConfigError(f"data.databases.{key}", [
            _describe(err, ("data", "databases", key, *err["loc"])) for err in e.errors()])\
            from None


def _get(node, dotted: str, kind=str):
    """The value at `dotted` if it has type `kind`, else None (its own error is reported
    by the per-key check)."""
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, kind) and not (kind is int and isinstance(node, bool)) \
        else None


def _names(params: dict, dotted: str) -> list:
    return [v for v in _get(params, dotted, list) or [] if isinstance(v, str)]


def cross_field_problems(params: dict, root: Path = Path(".")) -> list[str]:
    """Rules between keys: every name refers to something defined, every backbone fits.
    They read the raw dict, a value of the wrong type counting as absent, so that they are
    reported beside the per-key errors, even those of the sections they tie (a pydantic
    model validator would not run then)."""
    get = functools.partial(_get, params)
    out = []
    databases, train_sets, test_sets, models, exports = (get(k, dict) or {} for k in (
        "data.databases", "merge.train_sets", "merge.test_sets", "models", "export.models"))
    merge = {**train_sets, **test_sets}
    grid_models, grid_train, grid_test = (
        _names(params, f"grid.{k}") for k in ("models", "train_sets", "test_sets"))
    emotions = get("gan.emotions", list)
    sources = ("augment.source", *(("gan.source", "gan.extra_source") if emotions else ()))

    derived = [p for p in (get("augment.part"), get("gan.part")) if p]
    for key in ("augment.part", "gan.part"):
        if get(key) in databases:
            out.append(f"{key} = {get(key)!r}: is also a database name")
    for key in sources:
        if databases and get(key) not in (*databases, None):
            out.append(f"{key} = {get(key)!r}: not a database of data.databases "
                       f"({', '.join(sorted(databases))})")
    parts = sorted(databases) + derived
    for group, sets in (("train_sets", train_sets), ("test_sets", test_sets)):
        for name, members in sets.items():
            for part in members if isinstance(members, list) else []:
                if part not in parts:
                    out.append(f"merge.{group}.{name} = {members!r}: part {part!r} is neither "
                               f"a database (data.databases: {', '.join(sorted(databases))}) "
                               f"nor a derived part ({', '.join(derived)})")
    for name in get("merge.allow_missing_classes", list) or []:
        if train_sets and name not in train_sets:
            out.append(f"merge.allow_missing_classes: {name!r} is not a train set "
                       f"(merge.train_sets: {', '.join(train_sets)})")
    if both := set(train_sets) & set(test_sets):
        out.append(f"merge: {', '.join(sorted(both))} is both a train and a test set")

    # no test image (nor a face derived from one) may train: a test set's parts never
    # appear in a train set, nor feed the augmentation or the DCGANs
    train_parts, test_parts = ({p for ps in sets.values() if isinstance(ps, list) for p in ps}
                               for sets in (train_sets, test_sets))
    gan_used = get("gan.part") in train_parts | test_parts
    for part in sorted(train_parts & test_parts):
        out.append(f"merge: part {part!r} is in a train set and in a test set (test images "
                   "would train)")
    for key in sources:
        if get(key) in test_parts:
            out.append(f"{key} = {get(key)!r}: a test set's part; its faces would reach the "
                       "train sets through the derived images")
    if get("ksearch.train_set") in test_sets:       # a name of no set: `unknown` below
        out.append(f"ksearch.train_set = {get('ksearch.train_set')!r}: k is chosen on a "
                   f"held-out part of a train set ({', '.join(train_sets)}), never on a test set")
    if emotions is not None and gan_used != bool(emotions):
        out.append(f"gan.emotions = {emotions!r}: " + (
            "a merge set uses gan.part, so list the emotions to generate" if gan_used else
            "no merge set uses gan.part: set gan.emotions=[] so the GAN stages do not run "
            "(and gan_quality.models=[])"))
    for key in ("gan_quality.models", "gan_quality.classifier"):
        if not gan_used and get(key, (list, str)):
            out.append(f"{key}: no merge set uses gan.part, so there are no DCGAN images to "
                       f"classify: set {key}={'[]' if key.endswith('models') else 'null'}")

    def unknown(key, names, among, what, shown=None):
        for name in names:
            if isinstance(name, str) and among and name not in among:
                out.append(f"{key} = {name if shown is None else shown!r}: {name!r} is not "
                           f"{what}{', '.join(among)})")

    a_set, a_model = "a merge set (merge.train_sets/test_sets: ", "a backbone of models ("
    for group in ("grid.train_sets", "grid.test_sets", "crossval.sets"):
        unknown(group, _names(params, group), merge, a_set, get(group, list))
    # gan_quality.train_set means something only while gan_quality.models does, gan_set
    # while it or gan_quality.classifier does
    gan_quality = ("gan_quality.train_set",) if _names(params, "gan_quality.models") else ()
    gan_set = ("gan_quality.gan_set",) if gan_quality or get("gan_quality.classifier") else ()
    export_sets = [f"export.models.{m}" for m in exports]
    for key in ("ksearch.train_set", *gan_quality, *gan_set, *export_sets):
        unknown(key, [get(key)], merge, a_set)
    for key in (*gan_quality, *export_sets):  # models the grid trains
        if get(key) and grid_train and get(key) not in grid_train:
            out.append(f"{key} = {get(key)!r}: the grid trains no model on it (grid.train_sets: "
                       f"{', '.join(grid_train)})")
    select_on = get("train.select_on")
    if select_on is not None and select_on != "val" and grid_test and select_on not in grid_test:
        out.append(f"train.select_on = {select_on!r}: must be 'val' or one of grid.test_sets "
                   f"({', '.join(grid_test)})")

    for name in models:
        if name not in BACKBONES:
            out.append(f"models.{name}: unknown backbone (known: {', '.join(BACKBONES)})")
    for group in ("grid.models", "crossval.models"):
        unknown(group, _names(params, group), models, a_model, get(group, list))
    unknown("model.name", [get("model.name")], models, a_model)
    unknown("gan_quality.models", _names(params, "gan_quality.models"), grid_models,
            "a backbone of grid.models (", get("gan_quality.models", list))
    unknown("export.models", exports, grid_models, "a backbone of grid.models (")
    classifier = get("gan_quality.classifier")
    unknown("gan_quality.classifier", [classifier], models, a_model)
    # a weights file is no dependency of gan_quality
    if classifier and _get(models.get(classifier), "weights") not in (None, *NAMED_WEIGHTS):
        out.append(f"gan_quality.classifier = {classifier!r}: its weights are a file "
                   f"(models.{classifier}.weights); label fidelity trains it from "
                   f"{', '.join(NAMED_WEIGHTS)} weights only")

    for name, m in models.items():
        backbone, k, size = BACKBONES.get(name), _get(m, "k", int), _get(m, "size", int)
        if backbone and k is not None and k > backbone.layers:
            out.append(f"models.{name}.k = {k}: exceeds the {backbone.layers} layers of "
                       f"{name} (InputLayer included)")
        if backbone and size is not None and size < backbone.min_size:
            out.append(f"models.{name}.size = {size}: below the {backbone.min_size} px "
                       f"{name} accepts")
        if isinstance(m, dict) and m.get("preprocess") == "caffe" and m.get("channels") == 1:
            out.append(f"models.{name}: preprocess caffe needs channels 3 (RGB -> BGR)")
        if _get(m, "weights") not in (None, *NAMED_WEIGHTS):
            out += _weights_problems(f"models.{name}.weights", m["weights"], name, root)
    k_values = get("ksearch.k_values", dict) or {}
    for name, ks in k_values.items():
        if models and name not in models:
            out.append(f"ksearch.k_values.{name}: not a backbone of models "
                       f"({', '.join(models)})")
        for k in ks if name in BACKBONES and isinstance(ks, list) else []:
            if isinstance(k, int) and k > BACKBONES[name].layers:
                out.append(f"ksearch.k_values.{name} = {ks!r}: k = {k} exceeds the "
                           f"{BACKBONES[name].layers} layers of {name}")
    selected = get("model.name")
    if selected and k_values and selected not in k_values and \
            _get(models.get(selected), "weights") != "none":
        out.append(f"ksearch.k_values: no k values for model.name = {selected!r}")

    size = get("crop.size", int)
    used = {*grid_models, *_names(params, "crossval.models"),
            *_names(params, "gan_quality.models"), selected, *exports}
    small = [f"{n} {BACKBONES[n].min_size} px" for n in sorted(used - {None})
             if n in BACKBONES and size is not None and size < BACKBONES[n].min_size
             and not _get(models.get(n), "size", int)]
    if small:
        out.append(f"crop.size = {size}: below the minimum input size of the backbones it "
                   f"feeds ({', '.join(small)})")

    if get("gan.kid_weights") not in (None, "imagenet"):
        out += _weights_problems("gan.kid_weights", get("gan.kid_weights"), None, root)
    return out


def _weights_problems(key: str, value: str, name: str | None, root: Path) -> list[str]:
    """A local weights file must be under weights/<backbone name>/, or kid_weights/ for the
    KID extractor (name None): dvc.yaml depends on that folder."""
    folder = PurePosixPath(WEIGHTS_DIR, name) if name else PurePosixPath(KID_WEIGHTS_DIR)
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or folder not in path.parents:
        return [f"{key} = {value!r}: a local weights file must be inside {folder}/ (put it "
                f"there and `dvc add` it, so the stages that load it depend on its bytes); "
                f"or use imagenet" + (", none or fixed_random" if name else "")]
    if not (root / path).is_file():
        return [f"{key} = {value!r}: file not found"]
    return []
