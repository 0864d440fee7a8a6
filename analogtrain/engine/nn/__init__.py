"""Network layers. :mod:`analogtrain.engine.nn.functional` holds the pure forward/backward math
(activations, losses, linear, conv2d via im2col, max-pooling, dropout, gradient clipping,
LSTM); the analog layers build on it through its ``matvec`` / ``rmatvec`` seam."""

from analogtrain.engine.nn import functional
from analogtrain.engine.nn.functional import *  # noqa: F401,F403
from analogtrain.engine.nn.functional import __all__ as _functional_all

__all__ = ["functional", *_functional_all]
