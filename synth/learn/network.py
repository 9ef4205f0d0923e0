"""The Keras network of SPEC section 5, with its fixes for multi-worker training, and its weights under the model folder's names."""

from __future__ import annotations

import numpy as np

from synth.music.events import NUM_LENGTHS
from synth.music.notes import NUM_CLASSES


def _network_class():
    """The keras.Model subclass `Network`, made when first asked for: Keras loads only then."""
    import keras

    import tensorflow as tf

    def multiworker(strategy) -> bool:
        return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)

    class Network(keras.Model):
        """keras.Model with two fixes for MultiWorkerMirroredStrategy in Keras 3.15, which
        otherwise fails before the first step: it builds the model by reducing the whole
        first distributed batch (a tuple) with strategy.reduce ("Attempt to convert a value
        (PerReplica...)"), and it averages each step's scalar logs over axis 0 ("Invalid
        reduction dimension 0 for input with 0 dimensions"). Here the model is built from
        this worker's part of the batch, and the logs are averaged over the replicas."""

        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            strategy = self._distribute_strategy
            if not multiworker(strategy) or iterator is None:
                return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
            for _, _, it in iterator:
                batch = next(it)
                break
            local = [strategy.experimental_local_results(v)[0] for v in batch]
            with strategy.scope():
                self._symbolic_build(data_batch=tuple(local))

        def _make_function(self, step_function):
            strategy = self._distribute_strategy
            if not multiworker(strategy):
                return super()._make_function(step_function)

            @tf.function(reduce_retracing=True)
            def one_step(iterator):
                logs = strategy.run(step_function, args=(iterator.get_next(),))
                return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

            return one_step

    return Network


def build_keras_model(units: int = 256, dropout: float = 0.2, learning_rate=3e-3):
    """The Keras model of SPEC section 5, compiled for teacher forcing with padding weights.

    One input (class, length class, next class per step) and one output (the class softmax
    beside the length softmax, 25 + 32 per step), so that multi-worker training reduces plain
    tensors, not dicts; the layers are those the NumPy model loads."""
    import keras
    from keras import layers

    steps = keras.Input(shape=(None, 3), dtype="int32", name="events")
    event = layers.Lambda(lambda x: keras.ops.concatenate(
        [keras.ops.one_hot(x[..., 0], NUM_CLASSES), keras.ops.one_hot(x[..., 1], NUM_LENGTHS)],
        axis=-1), name="one_hot")(steps)
    hidden = layers.LSTM(units, return_sequences=True, name="lstm")(event)
    hidden = layers.Dropout(dropout, name="dropout")(hidden)
    class_probs = layers.Dense(NUM_CLASSES, activation="softmax", name="dense")(hidden)
    with_class = layers.Lambda(lambda pair: keras.ops.concatenate(
        [pair[0], keras.ops.one_hot(pair[1][..., 2], NUM_CLASSES)], axis=-1),
        name="hidden_and_class")([hidden, steps])
    length_probs = layers.Dense(NUM_LENGTHS, activation="softmax", name="length")(with_class)
    probs = layers.Concatenate(name="probs")([class_probs, length_probs])
    model = _network_class()(steps, probs, name="synth_melody")

    class JointLoss(keras.losses.Loss):
        """Class cross-entropy + length cross-entropy, per event."""

        def call(self, targets, probs):
            targets = keras.ops.cast(targets, "int32")
            return (keras.losses.sparse_categorical_crossentropy(
                        targets[..., 0], probs[..., :NUM_CLASSES]) +
                    keras.losses.sparse_categorical_crossentropy(
                        targets[..., 1], probs[..., NUM_CLASSES:]))

    # Padding has weight 0: average over real events only, so the loss shown is the true
    # nats per event (class + length).
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=JointLoss(reduction="mean_with_sample_weight", name="joint"))
    return model


def keras_weights(model) -> dict[str, np.ndarray]:
    """The Keras model's weights under the names of the model folder."""
    kernel, recurrent, bias = model.get_layer("lstm").get_weights()
    dense_kernel, dense_bias = model.get_layer("dense").get_weights()
    length_kernel, length_bias = model.get_layer("length").get_weights()
    return {"lstm_kernel": kernel, "lstm_recurrent_kernel": recurrent, "lstm_bias": bias,
            "dense_kernel": dense_kernel, "dense_bias": dense_bias,
            "length_kernel": length_kernel, "length_bias": length_bias}


def set_keras_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Loads a model folder's weights into the Keras model (to compare it with the NumPy one)."""
    model.get_layer("lstm").set_weights([weights["lstm_kernel"], weights["lstm_recurrent_kernel"],
                                         weights["lstm_bias"]])
    model.get_layer("dense").set_weights([weights["dense_kernel"], weights["dense_bias"]])
    model.get_layer("length").set_weights([weights["length_kernel"], weights["length_bias"]])
