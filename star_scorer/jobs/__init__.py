"""The jobs: train, refit, calibrate, evaluate, score, register (and the training transforms in augment). They import the library, never the tools."""
