"""``device``: the settings of a device characterisation (pulse response, symmetry point, states)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from analogtrain.config.device_spec import DeviceSpec
from analogtrain.config.fields import param
from analogtrain.config.run import RunConfig
from analogtrain.errors import ConfigError


@dataclass(frozen=True)
class CharacteriseConfig(RunConfig):
    """Sample ``devices`` devices of one device config and measure them: ``cycles`` cycles of
    ``pulses`` up then ``pulses`` down pulses from read weight 0, and a random +-1 sequence
    of ``random_pulses`` pulses for the simulated symmetry point."""

    kind: ClassVar[str] = "device"
    section: ClassVar[str] = "characterise"
    tables: ClassVar[dict] = {"device": "device"}

    devices: int = param(100, "number of sampled devices (device-to-device variation)", unit="devices", ge=1,
                         le=100000)
    cycles: int = param(3, "pulse-response cycles (each: n up pulses, then n down pulses)", unit="cycles", ge=1,
                        le=1000)
    pulses: int | None = param(None, "pulses per direction in a cycle (default: about n_states, >= 10)",
                               unit="pulses", ge=1, le=10**6, nullable=True, default_doc="about n_states")
    random_pulses: int | None = param(None, "length of the random +-1 sequence for the simulated symmetry "
                                            "point (default: 40 n_states within [4000, 100000])", unit="pulses",
                                      ge=100, le=10**7, nullable=True, default_doc="40 n_states")
    seed: int = param(0, "master seed (device draw, pulses, noise, the random sequence)", ge=0)
    device: DeviceSpec = DeviceSpec()

    def resolve_defaults(self) -> None:
        if not isinstance(self.device, DeviceSpec):
            return
        dev = self.device_config()
        if self.pulses is None:
            self._set("pulses", int(max(10, min(20000, round(dev.n_states)))))
        if self.random_pulses is None:
            self._set("random_pulses", int(max(4000, min(100000, round(40 * dev.n_states)))))

    def check(self) -> None:
        if not isinstance(self.device, DeviceSpec):
            raise ConfigError("characterise.device: expected a DeviceSpec", field="characterise.device")
        for sc in self.device.scopes():
            raise ConfigError(f"device.{sc}.*: array scopes (A./W.) only apply to transfer algorithms, "
                              "not to a device characterisation", field=f"device.{sc}")

    def device_config(self):
        """The resolved device config."""
        return self.device.resolve(None, allow_scopes=False)
