"""AGAD: analog gradient accumulation with a dynamic digital reference (spec 4.6.2).

Instead of a programmed reference, the readout subtracts ``P_ref``: the running mean
``P`` of past raw reads of the same column, frozen into ``P_ref`` at each chopper flip
(copied at the first read after the flip, before P sees that read). Any static offset
of A cancels in ``v - P_ref``; what is transferred is the excursion of A since the last
flip, demodulated by the current chopper sign.
"""

from __future__ import annotations

import numpy as np


def agad_readout(v: np.ndarray, p: np.ndarray, p_ref: np.ndarray, was_switched: np.ndarray,
                 c_in_j: np.ndarray, c_out: np.ndarray, mu: np.ndarray):
    """One AGAD read of column j for R replicas::

        P_ref <- P            where the chopper of j flipped since the last read
        delta  = c_in[j] c_out (v - P_ref)
        P     <- (1 - mu) P + mu v,      mu = min(beta / N_c, 1)

    v, p, p_ref, c_out : (R, out); was_switched, c_in_j, mu : (R,).
    Returns (delta, new P, new P_ref).
    """
    p_ref = np.where(was_switched[:, None], p, p_ref)
    delta = (v - p_ref) * (c_in_j[:, None] * c_out)
    p = (1.0 - mu[:, None]) * p + mu[:, None] * v
    return delta, p, p_ref
