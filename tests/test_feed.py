"""The training input (`fer.train.finetune.batches` into `Model.fit`): every train row once per
epoch, in an order that is a function of (seed, epoch) alone and changes with both;
`fit` takes each epoch's batches in turn, step 2 going on where step 1 ended; validation
rows never train; two runs give the same bytes."""
import dataclasses
import gc
import os
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import numpy as np
import pytest

from fer.train import finetune
from fer.train.finetune import batches, epoch_order, train_two_step, validation_split
from fer.train.backbones import ModelSpec
from tests.test_models import tiny_dataset
from sections import section


def _rows_of(ds, steps=None):
    """The row ids of each batch, read as `fit` reads them (one iterator)."""
    return [x.numpy()[:, 0].astype(int) for x, _ in ds.take(-1 if steps is None else steps)]


def _ids(n):                # row i holds i: a batch shows which rows it read
    return np.arange(n, dtype=np.float32)[:, None]


def test_batches_cover_every_row_once_per_epoch_in_an_order_of_seed_and_epoch():
    rows = np.arange(3, 40, 2)                                   # 19 rows of 40
    ds = batches([_ids(40)], np.zeros(40, np.int64), rows, 4, seed=7, epochs=(2, 5))
    got = _rows_of(ds)
    assert [len(b) for b in got] == [4, 4, 4, 4, 3] * 3        # 3 epochs, no carry-over
    epochs = [np.concatenate(got[i:i + 5]) for i in (0, 5, 10)]
    for e, seen in zip((2, 3, 4), epochs):
        assert sorted(seen) == list(rows)                        # each row once
        # the epoch's order (each batch read sorted, for the memory map)
        want = epoch_order(rows, 7, e)
        assert [sorted(b) for b in got[(e - 2) * 5:(e - 1) * 5]] == [
            sorted(want[i:i + 4]) for i in range(0, 19, 4)]
    assert not np.array_equal(epochs[0], epochs[1])              # reshuffled every epoch
    # a function of (seed, epoch): the same from another pipeline, another with the seed
    assert np.array_equal(np.concatenate(_rows_of(batches(
        [_ids(40)], np.zeros(40, np.int64), rows, 4, seed=7, epochs=(3, 4)))), epochs[1])
    assert not np.array_equal(epoch_order(rows, 8, 3), epoch_order(rows, 7, 3))


def test_a_batch_reads_its_rows_sorted_and_several_inputs_come_as_float32():
    images = np.random.default_rng(0).integers(0, 256, (9, 2, 2, 3), dtype=np.uint8)
    acts = np.random.default_rng(1).random((9, 5), np.float32)
    labels = np.arange(9) % 7
    (x, y), = list(batches([images, acts], labels, [1, 4, 8], 3, seed=0))
    assert x[0].dtype.name == "float32" and x[0].shape == (3, 2, 2, 3)
    np.testing.assert_array_equal(x[0], images[[1, 4, 8]].astype(np.float32))
    np.testing.assert_array_equal(x[1], acts[[1, 4, 8]])
    np.testing.assert_array_equal(y, labels[[1, 4, 8]])


def test_a_finished_pipeline_lets_go_of_its_arrays():
    """TensorFlow keeps every dataset's numpy_function alive (tensorflow/tensorflow#35084):
    holding the arrays there kept each seed's cached activations mapped (peak RSS grew by
    ~60 MB a VGG16 seed). Once its dataset and iterators are gone, nothing holds them."""
    images, labels = _ids(12), np.arange(12) % 7
    alive = weakref.ref(images)
    ds = batches([images], labels, np.arange(12), 4, seed=0, epochs=(0, 2))
    it = iter(ds)
    del ds, images
    gc.collect()
    assert len(list(it)) == 6                  # an iterator keeps its dataset and arrays
    del it
    gc.collect()
    assert alive() is None


def test_a_process_exits_while_an_epoch_is_half_read():
    """A stage that fails in the middle of `fit` exits with its error, not a hang. A
    background read in flight at interpreter exit never finished (Python stops threads
    that ask for the GIL then) and TensorFlow's iterator teardown waited for it forever:
    prefetch and tf.data's map parallelization both read a batch ahead."""
    script = textwrap.dedent("""
        import time
        import numpy as np
        from fer.train.finetune import batches

        class Slow:                     # a memory map on a slow disk
            def __init__(self, a):
                self.a, self.dtype, self.shape = a, a.dtype, a.shape
            def __getitem__(self, idx):
                time.sleep(0.5)
                return self.a[idx]

        images = Slow(np.zeros((12, 2), np.float32))
        it = iter(batches([images], np.zeros(12, np.int64), np.arange(12), 4, seed=0))
        next(it)
        time.sleep(0.1)                 # the next batch would be in flight now
        print("exiting", flush=True)
        """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    try:
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the process hung at exit")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == "exiting\n"


def test_at_exit_reads_in_flight_end_first_and_no_new_one_starts():
    import threading
    import time
    from fer.train.finetune import Reads
    reads, started = Reads(), threading.Event()

    def read():
        with reads:
            started.set()
            time.sleep(0.3)

    thread = threading.Thread(target=read)
    thread.start()
    started.wait()
    t = time.perf_counter()
    reads.close()
    assert time.perf_counter() - t >= 0.25 and not thread.is_alive()
    with pytest.raises(RuntimeError, match="exiting"):
        with reads:
            pass


class Recorder:
    """An image array that records the rows each batch reads from it."""

    def __init__(self, images, log):
        self.images, self.log = images, log
        self.dtype, self.shape = images.dtype, images.shape

    def __getitem__(self, idx):
        self.log.append(np.asarray(idx))
        return self.images[idx]


@pytest.mark.parametrize("fast_path", [False, True])
def test_fit_trains_on_each_epochs_batches_in_turn_and_step2_goes_on(fast_path, tmp_path,
                                                                     monkeypatch):
    """What `Model.fit` consumed: epoch e's batches, e counted on across both steps, on
    either path (one iterator per fit, `steps_per_epoch` batches an epoch)."""
    data = tiny_dataset(3)                                       # 21 images
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path))
    train = section("train", epochs_step1=2, epochs_step2=3, batch_size=4, val_fraction=0.2,
                    fast_path=fast_path)
    log, real = [], finetune.batches

    def recording(arrays, labels, rows, batch_size, seed=None, epochs=(0, 1)):
        if seed is not None:
            arrays = [Recorder(a, log) for a in arrays]
        return real(arrays, labels, rows, batch_size, seed, epochs)

    monkeypatch.setattr(finetune, "batches", recording)
    _, history, _ = train_two_step(ModelSpec(name="vgg16", k=5, preprocess="caffe",
                                             weights="fixed_random", input_size=32),
                                   train, data, seed=3)
    tr, va = validation_split(data, train, 3)
    per_epoch = -(-len(tr) // 4)

    def want(epochs):                  # each batch is read sorted (for the memory map)
        return sorted(tuple(sorted(epoch_order(tr, 3, e)[i:i + 4]))
                      for e in epochs for i in range(0, len(tr), 4))

    # tf.data may run reads side by side, so the log's order is not the batches': what
    # each fit read, as a whole (its batches reach fit in order: the test above)
    got = [tuple(b) for b in log]
    assert len(got) == 5 * per_epoch
    assert sorted(got[:2 * per_epoch]) == want([0, 1])        # step 1: epochs 0, 1
    assert sorted(got[2 * per_epoch:]) == want([2, 3, 4])     # step 2 goes on: 2, 3, 4
    assert not set(np.concatenate(log)) & set(va)
    assert [len(history[s]["loss"]) for s in ("step1", "step2")] == [2, 3]


def test_validation_rows_never_train_and_two_runs_give_the_same_bytes():
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="fixed_random", input_size=32)
    train = section("train", epochs_step1=1, epochs_step2=1, batch_size=4, val_fraction=0.2,
                    fast_path=False)
    data = tiny_dataset(3)
    _, va = validation_split(data, train, 0)
    runs = []
    for images in (data.images, data.images, 255 - data.images):
        changed = images.copy()
        changed[np.setdiff1d(np.arange(len(data)), va)] = data.images[
            np.setdiff1d(np.arange(len(data)), va)]           # train rows as they are
        model, history, _ = train_two_step(spec, train, dataclasses.replace(
            data, images=changed), seed=0)
        runs.append((history, [w.numpy() for w in model.weights]))
    (h0, w0), (h1, w1), (h2, w2) = runs
    assert h0 == h1 and all(np.array_equal(a, b) for a, b in zip(w0, w1))
    # other validation images: the same weights and train losses, other val losses
    assert all(np.array_equal(a, b) for a, b in zip(w0, w2))
    assert h2["step2"]["loss"] == h0["step2"]["loss"]
    assert h2["step2"]["val_loss"] != h0["step2"]["val_loss"]


def test_cosine_decay_sets_each_epochs_learning_rate_and_restarts_with_every_seed():
    """lr_decay=cosine: step 2's epochs run at lr, 3/4 lr, 1/4 lr (3 epochs), counted
    from the step's first epoch (step 1 went first), the same for a second seed on the
    reused cell; none keeps lr_step2 constant."""
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="fixed_random", input_size=32)
    data = tiny_dataset(3)
    cosine = section("train", epochs_step1=1, epochs_step2=3, batch_size=4, val_fraction=0.2,
                     lr_decay="cosine", fast_path=False)
    for seed in (0, 1):
        _, history, _ = train_two_step(spec, cosine, data, seed, reuse=True)
        assert history["step2"]["learning_rate"] == pytest.approx([1e-4, 0.75e-4, 0.25e-4])
        assert history["step1"]["learning_rate"] == pytest.approx([1e-3])
    flat = cosine.model_copy(update={"lr_decay": "none"})
    _, history, _ = train_two_step(spec, flat, data, 0, reuse=True)
    assert "learning_rate" not in history["step2"]
    assert float(finetune.Cell.current.steps[1].optimizer.learning_rate) == pytest.approx(1e-4)
