"""Facts about MNIST that both sides share: the loader checks data against them, the reports
say when a result was trained on less than the full set."""

#: Rows in the full MNIST training and test sets (the shipped copy's sizes).
MNIST_TRAIN, MNIST_TEST = 60_000, 10_000
#: Pixels per image (28 × 28), the network's input width.
N_FEATURES = 784
