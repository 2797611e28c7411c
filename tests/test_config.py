"""The configuration is checked before any work: at composition (`python -m fer.core.params`,
nothing written when it is bad) and at the start of every stage (`load_params`)."""
import copy

import pytest
import yaml

from fer.core import params as fer_params
from fer.core.params import RecordingDict, compose, load_params
from fer.core.schema import BACKBONES, ConfigError, validate


@pytest.fixture(scope="module")
def demo():
    return compose(["profile=demo"])


def _problems(params, root="."):
    with pytest.raises(ConfigError) as e:
        validate(params, root=root)
    return e.value.problems


def test_issue_overrides_are_rejected_all_at_once_and_write_nothing(tmp_path):
    out = tmp_path / "params.yaml"
    with pytest.raises(ConfigError) as e:
        compose(["crop.size=abc", "train.seeds=0", "models.vgg16.k=1000", "augment.copies=0"],
                output=out)
    assert e.value.problems == [
        "crop.size = 'abc': input should be a valid integer",
        "augment.copies = 0: input should be greater than or equal to 1",
        "train.seeds = 0: input should be greater than or equal to 1",
        "models.vgg16.k = 1000: exceeds the 19 layers of vgg16 (InputLayer included)"]
    assert str(e.value).startswith("composed configuration: 4 configuration problems:\n")
    assert not out.exists()
    with pytest.raises(ConfigError, match=r"crop.size = 10: below the minimum input size of "
                       r"the backbones it feeds \(inception_resnet_v2 75 px, inception_v3 75 "
                       r"px, vgg16 32 px, vgg19 32 px\)"):
        compose(["crop.size=10"], output=out)
    assert not out.exists()


def test_cli_prints_one_line_errors_and_keeps_params_yaml(capsys):
    before = (fer_params.ROOT / "params.yaml").read_bytes()
    cases = {
        "profile=nope": "fer.core.params: In 'config': Could not find 'profile/nope'; Available "
                        "options in 'profile': demo, paper\n",
        "crop.siz=3": "fer.core.params: Could not override 'crop.siz'; To append to your config "
                      "use +crop.siz=3\n",
    }
    for override, message in cases.items():
        assert fer_params.main([override]) == 2
        assert capsys.readouterr().err == message
    assert fer_params.main(["+crop.sise=3", "augment.fill_mode=mirror"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[1:] == ["  crop.sise: unknown key (known here: size, confidence, no_face, margin, "
                       "square, workers, pad, frame_tolerance, min_detection_rate, "
                       "max_out_of_frame_share)",
                       "  augment.fill_mode = 'mirror': input should be 'reflect', 'constant', "
                       "'nearest' or 'wrap'", "params.yaml left unchanged."]
    assert (fer_params.ROOT / "params.yaml").read_bytes() == before


def test_names_must_refer_to_defined_sets_models_and_databases(demo):
    p = copy.deepcopy(demo)
    p["merge"]["train_sets"]["KDEF_OL"] = ["kdef", "kdef_da_o"]
    p["grid"]["test_sets"] = ["CK+", "JAFE"]
    p["train"]["select_on"] = "JAFFE"            # no longer a grid test set ... (JAFE typo)
    p["grid"]["models"] = ["vgg16", "vgg19"]
    p["gan_quality"]["models"] = ["vgg19", "inception_resnet_v2"]   # nor inception_resnet_v2
    p["export"]["models"] = {"inception_v3": "KDEF_Q"}   # the grid trains no inception_v3 cell
    p["crossval"]["models"] = ["resnet50"]
    p["gan_quality"]["train_set"] = "KDEF_X"
    p["gan_quality"]["classifier"] = "mini"
    p["model"]["name"] = "vgg_16"
    p["data"]["databases"]["ck"]["kind"] = "ckplus"
    del p["data"]["databases"]["jaffe"]["path"]
    problems = _problems(p)
    assert problems == [
        "data.databases.ck.kind = 'ckplus': unknown database kind; expected one of kdef, ck, "
        "jaffe, fer2013, folders, csv",
        "data.databases.jaffe.path: missing (required key)",
        "merge.train_sets.KDEF_OL = ['kdef', 'kdef_da_o']: part 'kdef_da_o' is neither a "
        "database (data.databases: actors, ck, jaffe, kdef, pfa) nor a derived part "
        "(kdef_da_ol, gan_q)",
        "grid.test_sets = ['CK+', 'JAFE']: 'JAFE' is not a merge set (merge.train_sets/"
        "test_sets: KDEF_OL, KDEF_PFA, KDEF_Q, KDEF_PFA_Q, CK+, JAFFE)",
        "gan_quality.train_set = 'KDEF_X': 'KDEF_X' is not a merge set (merge.train_sets/"
        "test_sets: KDEF_OL, KDEF_PFA, KDEF_Q, KDEF_PFA_Q, CK+, JAFFE)",
        "gan_quality.train_set = 'KDEF_X': the grid trains no model on it (grid.train_sets: "
        "KDEF_OL, KDEF_PFA, KDEF_Q, KDEF_PFA_Q)",
        "train.select_on = 'JAFFE': must be 'val' or one of grid.test_sets (CK+, JAFE)",
        "crossval.models = ['resnet50']: 'resnet50' is not a backbone of models (vgg16, "
        "vgg19, inception_v3, inception_resnet_v2, mini_xception)",
        "model.name = 'vgg_16': 'vgg_16' is not a backbone of models (vgg16, vgg19, "
        "inception_v3, inception_resnet_v2, mini_xception)",
        "gan_quality.models = ['vgg19', 'inception_resnet_v2']: 'inception_resnet_v2' is not "
        "a backbone of grid.models (vgg16, vgg19)",
        "export.models = 'inception_v3': 'inception_v3' is not a backbone of grid.models "
        "(vgg16, vgg19)",
        "gan_quality.classifier = 'mini': 'mini' is not a backbone of models (vgg16, vgg19, "
        "inception_v3, inception_resnet_v2, mini_xception)",
        "ksearch.k_values: no k values for model.name = 'vgg_16'"]


def test_ranges_and_rules_within_sections(demo):
    p = copy.deepcopy(demo)
    p["gan"].update(image_size=36, blocks=3, kid_images=1, emotions=["happy", "joy"])
    p["crop"]["confidence"] = 1.5
    p["train"]["max_images"] = 3
    p["ksearch"]["k_values"]["vgg19"] = [5, 23]
    p["edge"]["runtimes"][0]["where"] = "deno"
    p["edge"]["max_images"] = 5
    p["edge"]["warmup"] = 0
    p["export"]["variants"] = []
    p["models"]["resnet"] = {"k": 1, "preprocess": "caffe", "weights": "none"}
    problems = _problems(p)
    assert problems == [
        "crop.confidence = 1.5: input should be less than or equal to 1",
        "gan.emotions.1 = 'joy': input should be 'angry', 'disgust', 'fear', 'happy', "
        "'neutral', 'sad' or 'surprise'",
        "gan.blocks = 3: gan.image_size = 36 is not divisible by 2 ** gan.blocks = 8",
        "gan.kid_images = 1: input should be greater than or equal to 2",
        "train.max_images = 3: input should be greater than or equal to 7",
        "export.variants = []: list should have at least 1 item after validation, not 0",
        "edge.warmup = 0: input should be greater than or equal to 1",
        "edge.max_images = 5: input should be greater than or equal to 7",
        "edge.runtimes.0.where = 'deno': input should be 'node' or 'chromium'",
        "models.resnet: unknown backbone (known: vgg16, vgg19, inception_v3, "
        "inception_resnet_v2, mini_xception)",
        "ksearch.k_values.vgg19 = [5, 23]: k = 23 exceeds the 22 layers of vgg19"]


def test_a_misspelt_ksearch_train_set_is_reported_once_as_unknown(demo):
    p = copy.deepcopy(demo)
    p["ksearch"]["train_set"] = "KDEF_X"
    assert [x for x in _problems(p) if x.startswith("ksearch.train_set")] == [
        "ksearch.train_set = 'KDEF_X': 'KDEF_X' is not a merge set (merge.train_sets/"
        "test_sets: KDEF_OL, KDEF_PFA, KDEF_Q, KDEF_PFA_Q, CK+, JAFFE)"]


def test_inception_kid_without_weights_is_a_configuration_error(demo):
    p = copy.deepcopy(demo)
    p["gan"].update(kid_features="inception", kid_weights=None)
    assert _problems(p) == ["gan: gan.kid_features = inception needs gan.kid_weights: imagenet "
                            "or a no-top .h5 under kid_weights/ (or gan.kid_features = pixels)"]
    p["gan"].pop("kid_weights")
    assert len(_problems(p)) == 1


def test_weights_files_must_live_under_weights_folder(demo, tmp_path):
    p = copy.deepcopy(demo)
    (tmp_path / "weights/vgg16").mkdir(parents=True)
    (tmp_path / "weights/vgg16/notop.h5").write_bytes(b"x")
    p["models"]["vgg16"]["weights"] = "weights/vgg16/notop.h5"
    p["models"]["vgg19"]["weights"] = "/home/me/vgg19.h5"
    p["models"]["inception_v3"]["weights"] = "weights/vgg16/notop.h5"
    p["models"]["inception_resnet_v2"]["weights"] = "weights/inception_resnet_v2/x.h5"
    p["gan"]["kid_weights"] = "kid_weights/../weights/vgg16/notop.h5"
    assert _problems(p, tmp_path) == [
        "models.vgg19.weights = '/home/me/vgg19.h5': a local weights file must be inside "
        "weights/vgg19/ (put it there and `dvc add` it, so the stages that load it depend on "
        "its bytes); or use imagenet, none or fixed_random",
        "models.inception_v3.weights = 'weights/vgg16/notop.h5': a local weights file must be "
        "inside weights/inception_v3/ (put it there and `dvc add` it, so the stages that load "
        "it depend on its bytes); or use imagenet, none or fixed_random",
        "models.inception_resnet_v2.weights = 'weights/inception_resnet_v2/x.h5': file not "
        "found",
        "gan.kid_weights = 'kid_weights/../weights/vgg16/notop.h5': a local weights file must be "
        "inside kid_weights/ (put it there and `dvc add` it, so the stages that load it "
        "depend on its bytes); or use imagenet"]


def test_keys_other_parts_add_are_accepted(demo, tmp_path):
    p = copy.deepcopy(demo)
    (tmp_path / "kid_weights").mkdir(parents=True)
    (tmp_path / "kid_weights/inception.h5").write_bytes(b"x")
    p["crop"].update(pad=0.2, min_detection_rate=0.8)
    p["gan"].update(kid_features="inception", kid_weights="kid_weights/inception.h5")
    p["train"]["select_on"] = "val"
    p["models"]["inception_v3"]["preprocess"] = "tf"
    p["data"]["databases"]["mine"] = {"kind": "csv", "name": "mine", "path": "data/mine",
                                      "csv": "labels.csv",
                                      "subject_pattern": "(?P<subject>S\\d+)_",
                                      "class_policy": "skip", "detect": False}
    validate(p, root=tmp_path)
    p["gan"]["kid_weights"] = "imagenet"
    validate(p, root=tmp_path)


def test_every_stage_checks_params_before_work(demo, tmp_path, monkeypatch):
    bad = copy.deepcopy(demo)
    bad["crop"]["size"] = "abc"
    bad["augment"]["copies"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    monkeypatch.chdir(tmp_path)
    from stages import augment, import_data
    for run in (lambda: import_data.main("kdef"), augment.main):
        with pytest.raises(ConfigError, match=r"params.yaml: 2 configuration problems:\n"
                           r"  crop.size = 'abc': .*\n  augment.copies = 0: "):
            run()
    assert list(tmp_path.iterdir()) == [tmp_path / "params.yaml"]   # nothing written


def test_recording_params_logs_every_key_read(demo, tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(demo))
    log = tmp_path / "read.log"
    monkeypatch.setenv(fer_params.PARAMS_LOG_ENV, str(log))
    p = load_params(tmp_path / "params.yaml")
    assert isinstance(p, RecordingDict) and p == demo
    opts = dict(p["augment"])
    size = p["crop"]["size"]
    detect = p["data"]["databases"]["kdef"].get("detect", True)
    names = [name for name, _ in p["merge"]["test_sets"].items()]
    assert (opts, size, detect, names) == (demo["augment"], 80, True, ["CK+", "JAFFE"])
    assert set(log.read_text().split()) == {
        "augment", *(f"augment.{k}" for k in demo["augment"]), "crop.size",
        "data.databases.kdef.detect", "merge.test_sets", "merge.test_sets.CK+",
        "merge.test_sets.JAFFE"}
    # membership reads the set of keys: the whole mapping is a dependency
    log.write_text("")
    assert "kdef" in p["data"]["databases"] and len(p["models"]) == 5
    assert log.read_text().split() == ["data.databases", "models"]


def test_backbone_table_matches_keras():
    import keras

    from fer.train.backbones import APPLICATIONS, mini_xception
    builders = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19,
                "inception_v3": keras.applications.InceptionV3,
                "inception_resnet_v2": keras.applications.InceptionResNetV2}
    assert set(BACKBONES) == {*builders, "mini_xception"}
    assert APPLICATIONS == {**builders, "mini_xception": mini_xception}
    b = BACKBONES["mini_xception"]       # down to 1 x 1 at its minimum, 4 stride-2 modules
    base = mini_xception(input_shape=(b.min_size, b.min_size, 1))
    assert len(base.layers) == b.layers and base.output_shape == (None, 1, 1, 128)
    for name, b in ((n, BACKBONES[n]) for n in builders):
        base = builders[name](include_top=False, weights=None,
                              input_shape=(b.min_size, b.min_size, 3))
        assert len(base.layers) == b.layers, name
        with pytest.raises(ValueError, match=f"at least {b.min_size}x{b.min_size}"):
            builders[name](include_top=False, weights=None,
                           input_shape=(b.min_size - 1, b.min_size - 1, 3))
        keras.backend.clear_session()


def test_no_test_image_can_reach_training_or_a_choice(demo):
    """A test set's parts never train, feed the augmentation or the DCGANs, and k is never
    chosen on a test set; selection on validation needs validation subjects."""
    p = copy.deepcopy(demo)
    p["merge"]["train_sets"]["KDEF_OL"] = ["kdef", "kdef_da_ol", "ck"]
    p["augment"]["source"] = "jaffe"
    p["ksearch"]["train_set"] = "CK+"
    p["train"]["val_fraction"] = 0
    problems = _problems(p)
    assert "merge: part 'ck' is in a train set and in a test set (test images would train)" \
        in problems
    assert any(x.startswith("augment.source = 'jaffe': a test set's part") for x in problems)
    assert any(x.startswith("ksearch.train_set = 'CK+': k is chosen on a held-out part of a "
                            "train set") for x in problems)
    assert any(x.startswith("train.val_fraction = 0: train.select_on=val needs") for x in problems)
    p = copy.deepcopy(demo)
    p["train"].update(val_fraction=0, select_on="CK+")      # the paper's protocol: allowed
    validate(p)


def test_database_options_and_crop_padding_are_checked_before_any_stage(demo):
    p = copy.deepcopy(demo)
    p["data"]["databases"]["kdef"]["source_patern"] = "x"     # a typo
    p["crop"]["pad"] = None
    p["data"]["databases"]["pfa"].pop("name")
    problems = _problems(p)
    assert any(x.startswith("data.databases.kdef.source_patern: unknown key (known here: "
                            "path, require_all, detect, pad, square, kind, frontal_only)")
               for x in problems)
    assert any(x.startswith("crop.pad = None") for x in problems)
    assert "data.databases.pfa.name: missing (required key)" in problems


def test_gan_stages_exist_exactly_when_a_set_uses_the_dcgan_images(demo):
    p = copy.deepcopy(demo)
    p["gan"]["emotions"] = []
    assert any(x.startswith("gan.emotions = []: a merge set uses gan.part")
               for x in _problems(p))
    for name in ("KDEF_Q", "KDEF_PFA_Q"):
        p["merge"]["train_sets"].pop(name)
    p["grid"]["train_sets"] = ["KDEF_OL", "KDEF_PFA"]
    p["ksearch"]["train_set"] = p["gan_quality"]["gan_set"] = "KDEF_OL"
    p["export"]["models"] = {"mini_xception": "KDEF_OL", "vgg19": "KDEF_OL"}
    p["gan_quality"]["models"] = []
    p["crossval"]["sets"] = ["KDEF_PFA", "CK+", "JAFFE"]
    p["gan_quality"]["classifier"] = None
    validate(p)
    p["gan_quality"]["classifier"] = "vgg16"
    assert _problems(p) == ["gan_quality.classifier: no merge set uses gan.part, so there are "
                            "no DCGAN images to classify: set gan_quality.classifier=null"]
    p["gan_quality"]["classifier"] = None
    p["gan"]["emotions"] = ["happy"]
    assert any("no merge set uses gan.part: set gan.emotions=[]" in x for x in _problems(p))


def test_allow_missing_classes_names_train_sets_only(demo):
    p = copy.deepcopy(demo)
    assert p["merge"]["allow_missing_classes"] == []         # the paper: all seven, always
    p["merge"]["allow_missing_classes"] = ["KDEF_OL", "CK+"]
    assert _problems(p) == [
        "merge.allow_missing_classes: 'CK+' is not a train set (merge.train_sets: KDEF_OL, "
        "KDEF_PFA, KDEF_Q, KDEF_PFA_Q)"]
    p["merge"]["allow_missing_classes"] = ["KDEF_OL"]
    validate(p)


def test_label_fidelity_classifier_is_a_model_with_named_weights(demo):
    p = copy.deepcopy(demo)
    p["gan_quality"]["classifier"] = "vgg16"
    validate(p)
    p["models"]["vgg16"]["weights"] = "weights/vgg16/notop.h5"   # gan_quality has no such dep
    assert "gan_quality.classifier = 'vgg16': its weights are a file (models.vgg16.weights); " \
        "label fidelity trains it from imagenet, none, fixed_random weights only" in _problems(p)
