"""fer.feed: its epoch loop gives what Keras's `Model.fit` gave the same feed as a
`keras.utils.PyDataset` (what fer.finetune used until c369c23), bit for bit; its batches
cover every row once per epoch, in an order that changes with the epoch and the seed."""
import gc
import random
import weakref

import keras
import numpy as np
import pytest

from fer import feed as feed_module
from fer.feed import BatchFeed, PyDatasetView, fit
from fer.finetune import EpochTimer, seed_everything


def _data(n=45, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), rng.integers(0, 7, n)


def _model(two_inputs=False):
    keras.utils.set_random_seed(0)
    inputs = [keras.Input((8, 8, 3)) for _ in range(1 + two_inputs)]
    x = keras.layers.Concatenate()(inputs) if two_inputs else inputs[0]
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _train(way, two_inputs=False, initial_epoch=0, epochs=3):
    images, labels = _data()
    arrays = [images, images[::-1].copy()] if two_inputs else images
    model = _model(two_inputs)
    seed_everything(7)
    feed = BatchFeed(arrays, labels, np.arange(5, 45), 8, "scale01", seed=7, epoch=2)
    val = BatchFeed(arrays, labels, np.arange(5), 8, "scale01")
    timer = EpochTimer()
    if way == "keras":
        h = model.fit(PyDatasetView(feed), validation_data=PyDatasetView(val), epochs=epochs,
                      initial_epoch=initial_epoch, callbacks=[timer], verbose=0).history
        history = {k: [float(v) for v in vs] for k, vs in h.items()}
    else:
        history = fit(model, feed, val, epochs=epochs, initial_epoch=initial_epoch,
                      callbacks=[timer])
    return history, [w.numpy() for w in model.weights], feed.epoch, random.random(), timer


@pytest.mark.parametrize("two_inputs, initial_epoch", [(False, 0), (True, 2)])
def test_fit_gives_what_keras_fit_gave_the_feed_as_a_pydataset(two_inputs, initial_epoch):
    ours = _train("fer", two_inputs, initial_epoch, epochs=initial_epoch + 3)
    keras_ = _train("keras", two_inputs, initial_epoch, epochs=initial_epoch + 3)
    assert ours[0] == keras_[0]          # losses, accuracies, val_ metrics: every bit
    assert set(ours[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in ours[0].values())
    assert len(ours[0]["loss"]) == len(set(ours[0]["loss"]))      # it trained
    assert all(np.array_equal(a, b) for a, b in zip(ours[1], keras_[1]))
    assert ours[2] == keras_[2] == 2 + 1 + 3     # the epoch: +1 as fit starts, +1 an epoch
    assert ours[3] == keras_[3]          # Python's generator drawn from alike
    assert len(ours[4].seconds) == 3


def _two_compiles(way):
    """fer.finetune's naive path on a fresh model: fit, freeze a layer, compile again
    (a new optimizer, loss tracker and metrics), fit on; no validation."""
    images, labels = _data()
    model = _model()
    seed_everything(3)
    feed = BatchFeed(images, labels, np.arange(45), 8, "scale01", seed=3)
    histories = []
    for step, epochs in ((1, 2), (2, 4)):
        if step == 2:
            model.layers[1].trainable = False
            model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                          metrics=["accuracy"])
        start = 2 if step == 2 else 0
        if way == "keras":
            h = model.fit(PyDatasetView(feed), epochs=epochs, initial_epoch=start,
                          verbose=0).history
            histories.append({k: [float(v) for v in vs] for k, vs in h.items()})
        else:
            histories.append(fit(model, feed, epochs=epochs, initial_epoch=start))
    return histories, [w.numpy() for w in model.weights]


def test_a_model_compiled_again_trains_its_new_graph_as_keras_fit_does():
    ours, keras_ = _two_compiles("fer"), _two_compiles("keras")
    assert ours[0] == keras_[0]
    assert [set(h) for h in ours[0]] == [{"loss", "accuracy"}] * 2
    assert all(np.array_equal(a, b) for a, b in zip(ours[1], keras_[1]))


def test_a_models_traced_steps_go_with_it():
    images, labels = _data()
    model = _model()
    fit(model, BatchFeed(images, labels, np.arange(45), 8, "scale01", seed=0))
    assert set(feed_module._STEPS[model]) == {"train"}
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None        # and so its entry (a weak key) with it


def test_stop_training_ends_the_epoch_and_the_fit():
    images, labels = _data()

    class StopAfterFirst(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    class StopAtBatch2(keras.callbacks.Callback):
        seen = 0

        def on_train_batch_end(self, batch, logs=None):
            self.seen += 1
            if batch == 1:
                self.model.stop_training = True

    history = fit(_model(), BatchFeed(images, labels, np.arange(45), 8, "scale01", seed=1),
                  epochs=5, callbacks=[StopAfterFirst()])
    assert {k: len(v) for k, v in history.items()} == {"loss": 1, "accuracy": 1}
    mid = StopAtBatch2()
    history = fit(_model(), BatchFeed(images, labels, np.arange(45), 8, "scale01", seed=1),
                  epochs=5, callbacks=[mid])
    assert mid.seen == 2 and len(history["loss"]) == 1


def test_batches_cover_every_row_once_in_an_order_keyed_by_seed_and_epoch():
    images, labels = _data()
    rows = np.arange(3, 40)

    def epoch_rows(seed, epoch):
        feed = BatchFeed(images, np.arange(len(images)), rows, 8, None, seed=seed,
                         epoch=epoch)
        random.seed(0)
        batches = list(feed.batches(feed.batch_order()))
        assert [len(y) for _, y in batches].count(8) == 4 and len(batches) == 5
        for x, y in batches:
            np.testing.assert_array_equal(x, images[y].astype(np.float32))
        return np.concatenate([y for _, y in batches])

    a = epoch_rows(1, 0)
    assert sorted(a) == list(rows)
    assert not np.array_equal(a, epoch_rows(1, 1))
    assert not np.array_equal(a, epoch_rows(2, 0))
    np.testing.assert_array_equal(a, epoch_rows(1, 0))


def test_unshuffled_feed_pads_its_last_batch_and_keeps_row_order():
    images, labels = _data()
    feed = BatchFeed(images, labels, np.arange(10), 4, "scale01", pad=True)
    assert feed.batch_order() == [0, 1, 2]
    ys = [y for _, y in feed.batches()]
    np.testing.assert_array_equal(np.concatenate(ys), labels[[*range(10), 9, 9]])


@pytest.mark.parametrize("mode", ["caffe", "scale01", "tf"])
def test_normalisation_in_the_graph_equals_numpys_bit_for_bit(mode):
    # a plain division in a graph came out one ulp off for scale01 and tf
    import tensorflow as tf
    from fer.models import normalize, normalize_graph
    rng = np.random.default_rng(0)
    images = np.concatenate([rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8),
                             np.arange(256 * 3, dtype=np.int64).reshape(1, 16, 16, 3)
                             .astype(np.uint8)])        # every level in every channel
    graph = tf.function(lambda x: normalize_graph(x, mode))
    np.testing.assert_array_equal(graph(images).numpy(), normalize(images, mode))
    assert graph(images).dtype == tf.float32


def test_a_normalising_feed_moves_uint8_and_refuses_float_images():
    images, labels = _data()
    x, _ = BatchFeed(images, labels, np.arange(10), 4, "caffe")[0]
    assert x.dtype == np.uint8
    with pytest.raises(ValueError, match="uint8"):
        BatchFeed(images.astype(np.float32), labels, np.arange(10), 4, "caffe")
    from fer.activations import CacheSpec, activations
    net = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])
    with pytest.raises(ValueError, match="uint8"):
        activations(net, [images.astype(np.float32)], "k", CacheSpec("/nonexistent"), "caffe")
