"""Network layers. :mod:`analogtrain.nn.functional` holds the pure forward/backward math
(activations, losses, linear, conv2d via im2col, max-pooling, dropout, gradient clipping,
LSTM); the analog layers build on it through its ``matvec`` / ``rmatvec`` seam."""

from . import functional
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all

__all__ = ["functional", *_functional_all]
