"""TTv2 and chopped TTv2 (c-TTv2): the readout of A against its static reference (docs/algorithms.md §4.4, §4.5).

The read of column j is ``v = (A - R)[:, j] + noise``: the device model already stores
A relative to its reference R (the programmed symmetry point plus the offset sigma_r).
c-TTv2 modulates the update onto A by the input chopper c_in[j] (and output chopper
c_out[i]) and demodulates the read with the same signs, so a static offset in v enters
H with alternating sign while the gradient adds coherently. TTv2 is c-TTv2 with
``in_chop_prob = 0`` (choppers stay +1).
"""

from __future__ import annotations

import numpy as np


def chopped_readout(v: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Demodulated read ``delta_i = c_in[j] c_out[i] v_i``.

    v : (R, out, k) reads of k columns; sign : the matching c_in[j] c_out[i] (+-1).
    """
    return v * sign
