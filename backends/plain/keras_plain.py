"""The baseline recipe as a Keras user writes it: ``keras.Sequential``, ``model.compile`` with
Adam and sparse categorical cross-entropy, one ``model.fit(x, y, batch_size=32, epochs=N,
shuffle=True)`` on the NumPy arrays, an epoch's time taken by a callback. ``--keras-backend``
picks Keras' backend (tensorflow, jax or torch), set before Keras is imported, as users do."""

import os
import time

from backends.plain import common

cli = common.parser(__doc__)
cli.add_argument("--keras-backend", default="tensorflow", choices=("tensorflow", "jax", "torch"))
args = cli.parse_args()
os.environ["KERAS_BACKEND"] = args.keras_backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after KERAS_BACKEND, as Keras requires)

data = common.load(args)
keras.utils.set_random_seed(args.seed)
model = keras.Sequential(
    [
        keras.Input((data.x_train.shape[1],)),
        keras.layers.Dense(common.HIDDEN, activation="relu"),
        keras.layers.Dense(common.N_CLASSES, activation="softmax"),
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(
        common.LEARNING_RATE, beta_1=common.BETA_1, beta_2=common.BETA_2, epsilon=common.EPSILON
    ),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)


class EpochTimes(keras.callbacks.Callback):
    """Each epoch's wall time, from its begin to its end callback."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        common.next_epoch(args)
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        common.emit(epoch=epoch + 1, seconds=time.perf_counter() - self.start)


model.fit(
    data.x_train,
    data.y_train,
    batch_size=common.BATCH_SIZE,
    epochs=args.epochs,
    shuffle=True,
    verbose=0,
    callbacks=[EpochTimes()],
)
_, accuracy = model.evaluate(data.x_test, data.y_test, batch_size=10_000, verbose=0)
common.emit(test_accuracy=float(accuracy))
