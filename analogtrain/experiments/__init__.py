"""Experiments: build the engine from configs, run it, return plain result data (never print)."""
