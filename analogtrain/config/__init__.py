"""Typed, validated configuration dataclasses and their loading from TOML and flags."""

from analogtrain.config.device import (DEVICE_MODELS, ConstantStepDevice, ExpStepDevice, LinearStepDevice, PowStepDevice,
                     PowStepReferenceDevice, PulsedDevice, SoftBoundsDevice, SoftBoundsReferenceDevice,
                     has_reference, model_class)
from analogtrain.config.io import IO_PRESETS, IOConfig, backward_io, transfer_read_io
from analogtrain.config.loading import (device_from_dict, parse_assignments, read_toml, resolve_device)
from analogtrain.config.update import UpdateConfig

__all__ = [
    "DEVICE_MODELS", "ConstantStepDevice", "ExpStepDevice", "LinearStepDevice", "PowStepDevice",
    "PowStepReferenceDevice", "PulsedDevice", "SoftBoundsDevice", "SoftBoundsReferenceDevice",
    "has_reference", "model_class", "IO_PRESETS", "IOConfig", "backward_io", "transfer_read_io",
    "device_from_dict", "parse_assignments", "read_toml", "resolve_device", "UpdateConfig",
]
