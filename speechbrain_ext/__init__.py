"""Shared modules of the ASR + SER recipe collection (folds, metrics, fold runner, networks)."""
