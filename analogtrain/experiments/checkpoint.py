"""Training checkpoints: every array and random-generator state needed to resume bit for bit.

A checkpoint is two files in the run directory: ``checkpoint-epochNNNN.npz`` (the arrays
of every analog layer's algorithm state) and ``checkpoint.json`` (the epoch, the names of
that npz, the config hash, each layer's counters and generator states, the data and
dropout generators, the metrics so far, the wall time). The JSON is written last and
commits the checkpoint; older npz files are removed after it. No pickle anywhere.
"""

from __future__ import annotations

from pathlib import Path

from analogtrain.errors import InputError
from analogtrain.results import files
from analogtrain.results.provenance import SCHEMA_VERSION
from analogtrain.seeding import generator_state

CHECKPOINT = "checkpoint.json"


def save(out_dir: Path, epoch: int, model, rng_data, rng_dropout, metrics: list, cfg_hash: str, wall: float) -> None:
    """Write the checkpoint after ``epoch`` (0-based) into ``out_dir``."""
    arrays, info = model.state()
    npz_name = f"checkpoint-epoch{epoch + 1:04d}.npz"
    files.write_npz(out_dir / npz_name, arrays)
    ck = {"schema_version": SCHEMA_VERSION, "epoch": epoch + 1, "arrays": npz_name, "config_hash": cfg_hash,
          "layers": info, "rng": {"data": generator_state(rng_data),
                                  "dropout": generator_state(rng_dropout) if rng_dropout is not None else None},
          "metrics": metrics, "wall_s": wall}
    files.write_json(out_dir / CHECKPOINT, ck)
    for old in out_dir.glob("checkpoint-epoch*.npz"):
        if old.name != npz_name:
            old.unlink(missing_ok=True)


def load(run_dir: Path) -> tuple[dict, dict]:
    """(checkpoint.json content, its arrays); InputError naming the file if absent or damaged."""
    ck = files.read_json(Path(run_dir) / CHECKPOINT,
                         f"--resume {run_dir}: no {CHECKPOINT} there (was the run started with --out?)",
                         f"--resume {run_dir}: {CHECKPOINT} is not readable JSON")
    if not isinstance(ck, dict) or "arrays" not in ck or "epoch" not in ck:
        raise InputError(f"--resume {run_dir}: {CHECKPOINT} is not an analogtrain checkpoint")
    arrays = files.load_npz(Path(run_dir) / str(ck["arrays"]))
    return ck, arrays


def exists(run_dir: Path) -> bool:
    return (Path(run_dir) / CHECKPOINT).exists()
