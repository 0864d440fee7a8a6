"""AGAD: analog gradient accumulation with a dynamic digital reference (docs/algorithms.md §4.6.2).

Instead of a programmed reference, the readout subtracts ``P_ref``: the running mean
``P`` of past raw reads of the same column, frozen into ``P_ref`` at each chopper flip
(copied at the first read after the flip, before P sees that read). Any static offset
of A cancels in ``v - P_ref``; what is transferred is the excursion of A since the last
flip, demodulated by the current chopper sign.
"""

from __future__ import annotations

import numpy as np


def agad_readout(v: np.ndarray, p: np.ndarray, p_ref: np.ndarray, was_switched: np.ndarray,
                 sign: np.ndarray, mu: np.ndarray):
    """AGAD reads of k columns for R replicas::

        P_ref <- P            where the chopper of the column flipped since its last read
        delta  = c_in[j] c_out[i] (v - P_ref)
        P     <- (1 - mu) P + mu v,      mu = min(beta / N_c, 1)

    v, p, p_ref, sign : (R, out, k); was_switched : (R, k); mu : (R,).
    Returns (delta, new P, new P_ref).
    """
    p_ref = np.where(was_switched[:, None, :], p, p_ref)
    delta = (v - p_ref) * sign
    mu = mu[:, None, None]
    p = (1.0 - mu) * p + mu * v
    return delta, p, p_ref
