"""mlpbench: an honest benchmark of one MNIST MLP across array libraries and frameworks."""

__version__ = "0.1.0"
