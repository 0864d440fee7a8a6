"""Named device presets (the established simulator's preset devices, plus the paper's).

Each preset is a model name and a dict of parameter overrides; keys may use the
virtual ``n_states`` (sets ``dw_min``). ``analogtrain device --list`` prints the
one-line descriptions. The values are those of aihwkit's ``presets/devices.py``;
where we differ it says so in the description.
"""

from __future__ import annotations

from typing import Any

#: name -> (one-line description, {"model": ..., **params})
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "softbounds": (
        "the paper's device: soft bounds with reference on [-1, 1], dw_min = 2/n_states (n_states 20), "
        "SP subtracted, reference_std (sigma_r) 0",
        dict(model="soft_bounds_reference", w_min=-1.0, w_max=1.0, n_states=20,
             dw_min_dtod=0.3, dw_min_std=0.3, w_max_dtod=0.3, w_min_dtod=0.3,
             up_down=0.0, up_down_dtod=0.01, mult_noise=False,
             reference_std=0.0, subtract_symmetry_point=True),
    ),
    "linearstep": (
        "linear step on [-1, 1] with slope gamma (default 1 = the softbounds preset, 0 = constant step), "
        "n_states 20, SP subtracted: the device of the symmetry sweep",
        dict(model="linear_step", w_min=-1.0, w_max=1.0, n_states=20,
             dw_min_dtod=0.3, dw_min_std=0.3, w_max_dtod=0.3, w_min_dtod=0.3,
             up_down=0.0, up_down_dtod=0.01, mult_noise=False,
             gamma_up=1.0, gamma_down=1.0, gamma_up_dtod=0.0, gamma_down_dtod=0.0,
             mean_bound_reference=False, reference_std=0.0, subtract_symmetry_point=True),
    ),
    "reram-sb": (
        "ReRAM, soft bounds fit to Gong et al. 2018 (aihwkit ReRamSBPresetDevice; 1000 states, "
        "write noise 56 dw_min; SP subtracted as in aihwkit's TT presets)",
        dict(model="soft_bounds_reference", dw_min=0.002, up_down=0.0, w_max=1.25, w_min=-0.75,
             mult_noise=False, dw_min_dtod=0.3, up_down_dtod=0.01, w_max_dtod=0.3 / 1.25,
             w_min_dtod=0.3 / 0.75, dw_min_std=3.75, write_noise_std=56.0, subtract_symmetry_point=True),
    ),
    "reram-es": (
        "ReRAM, exponential step fit to Gong et al. 2018 (aihwkit ReRamESPresetDevice)",
        dict(model="exp_step", dw_min=0.00135, up_down=0.259359, w_max=1.0, w_min=-1.0,
             a=-0.5, b=-0.5, gamma_up=5.0, gamma_down=5.0, A_up=-1.18445, A_down=-0.081404,
             dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.3, w_min_dtod=0.3,
             dw_min_std=5.0, write_noise_std=75.0),
    ),
    "reram-array-om": (
        "ReRAM array 'optimized material', Gong & Rasch et al. 2022 (aihwkit ReRamArrayOMPresetDevice)",
        dict(model="soft_bounds_reference", dw_min_dtod_log_normal=True, dw_min=0.0949, up_down=0.0,
             w_max=1.0, w_min=-1.0, mult_noise=False, dw_min_dtod=0.7829, up_down_dtod=0.01,
             w_max_dtod=0.3499, w_min_dtod=0.5695, dw_min_std=0.4158, write_noise_std=1.4113,
             corrupt_devices_range=0.01, corrupt_devices_prob=0.0, subtract_symmetry_point=True,
             reference_std=0.05),
    ),
    "reram-array-hfo2": (
        "ReRAM array 'baseline HfO2', Gong & Rasch et al. 2022 (aihwkit ReRamArrayHfO2PresetDevice)",
        dict(model="soft_bounds_reference", dw_min_dtod_log_normal=True, dw_min=0.4622, up_down=0.0,
             w_max=1.0, w_min=-1.0, mult_noise=False, dw_min_dtod=0.7125, up_down_dtod=0.01,
             w_max_dtod=0.4295, w_min_dtod=0.5990, dw_min_std=0.2174, write_noise_std=0.5841,
             corrupt_devices_range=0.01, corrupt_devices_prob=0.0, subtract_symmetry_point=True,
             reference_std=0.05),
    ),
    "capacitor": (
        "capacitor-like, nearly symmetric linear step, Li et al. 2018 (aihwkit CapacitorPresetDevice; "
        "400 states, leaks with lifetime 1e6)",
        dict(model="linear_step", dw_min=0.005, up_down=0.0, w_max=1.0, w_min=-1.0, mult_noise=False,
             gamma_up=0.05, gamma_down=0.05, dw_min_dtod=0.1, up_down_dtod=0.06, w_max_dtod=0.07,
             w_min_dtod=0.07, gamma_up_dtod=0.01, gamma_down_dtod=0.01, dw_min_std=0.3,
             write_noise_std=0.0, mean_bound_reference=True, lifetime=1.0e6, lifetime_dtod=0.3),
    ),
    "ecram": (
        "Li-based ECRAM, linear step fit to Tang et al. 2018 (aihwkit EcRamPresetDevice; 1000 states)",
        dict(model="linear_step", dw_min=0.002, up_down=0.0, w_max=1.1724, w_min=-0.8276, mult_noise=True,
             gamma_up=0.1153, gamma_down=0.5085, dw_min_dtod=0.1, up_down_dtod=0.01, w_max_dtod=0.05,
             w_min_dtod=0.05, gamma_up_dtod=0.05, gamma_down_dtod=0.05, dw_min_std=0.3,
             write_noise_std=0.0, mean_bound_reference=True),
    ),
    "ecram-mo": (
        "metal-oxide ECRAM, linear step after Kim et al. 2019 (aihwkit EcRamMOPresetDevice; ~7000 states)",
        dict(model="linear_step", dw_min=2.8214e-4, up_down=0.0, w_max=1.1714, w_min=-0.8286, mult_noise=True,
             gamma_up=0.4152, gamma_down=0.7342, dw_min_dtod=0.1, up_down_dtod=0.01, w_max_dtod=0.05,
             w_min_dtod=0.05, gamma_up_dtod=0.05, gamma_down_dtod=0.05, dw_min_std=2.0,
             write_noise_std=0.0, mean_bound_reference=True),
    ),
    "idealized": (
        "idealised constant step, symmetric on average, 10000 states (aihwkit IdealizedPresetDevice)",
        dict(model="constant_step", dw_min=0.0002, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0.0,
             up_down_dtod=0.0, w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3),
    ),
    "gokmen-vlasov": (
        "constant step of the 2016 RPU specification, 1200 states (aihwkit GokmenVlasovPresetDevice)",
        dict(model="constant_step", dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0.0,
             up_down_dtod=0.01, w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3),
    ),
    "symmetric": (
        "perfectly symmetric constant step without any variation on [-1, 1], n_states 1000 (a test device)",
        dict(model="constant_step", w_min=-1.0, w_max=1.0, n_states=1000, dw_min_dtod=0.0, dw_min_std=0.0,
             up_down=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0),
    ),
}

#: other accepted spellings: aihwkit class names and underscore forms
PRESET_ALIASES: dict[str, str] = {
    "ReRamSB": "reram-sb", "ReRamSBPresetDevice": "reram-sb", "reram_sb": "reram-sb",
    "ReRamES": "reram-es", "ReRamESPresetDevice": "reram-es", "reram_es": "reram-es",
    "ReRamArrayOM": "reram-array-om", "ReRamArrayOMPresetDevice": "reram-array-om",
    "ReRamArrayHfO2": "reram-array-hfo2", "ReRamArrayHfO2PresetDevice": "reram-array-hfo2",
    "Capacitor": "capacitor", "CapacitorPresetDevice": "capacitor",
    "EcRam": "ecram", "EcRamPresetDevice": "ecram",
    "EcRamMO": "ecram-mo", "EcRamMOPresetDevice": "ecram-mo", "ecram_mo": "ecram-mo",
    "Idealized": "idealized", "IdealizedPresetDevice": "idealized", "idealised": "idealized",
    "GokmenVlasov": "gokmen-vlasov", "GokmenVlasovPresetDevice": "gokmen-vlasov", "gokmen_vlasov": "gokmen-vlasov",
    "soft-bounds": "softbounds", "soft_bounds": "softbounds",
    "linear-step": "linearstep", "linear_step": "linearstep",
}


def preset_names() -> list[str]:
    """The canonical preset names, in listing order."""
    return list(PRESETS)


def canonical_preset(name: str) -> str | None:
    """The canonical name of a preset or alias (case-insensitive), or None."""
    if name in PRESETS:
        return name
    if name in PRESET_ALIASES:
        return PRESET_ALIASES[name]
    low = name.lower()
    for k in PRESETS:
        if k == low:
            return k
    for k, v in PRESET_ALIASES.items():
        if k.lower() == low:
            return v
    return None


def preset_values(name: str) -> dict[str, Any]:
    """A copy of the preset's parameter dict (with ``model``)."""
    return dict(PRESETS[name][1])
