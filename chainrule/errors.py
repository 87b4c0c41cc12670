"""chainrule's own exceptions: one base class, one subclass per kind of mistake.

Each subclass also derives from the built-in exception a caller would expect
(ValueError, OSError ...), so ``except ValueError`` keeps working.
"""


class ChainruleError(Exception):
    """Base class of every error chainrule raises on purpose."""


class ShapeError(ChainruleError, ValueError):
    """An array has the wrong shape for the layer or loss it was given to."""


class DTypeError(ChainruleError, TypeError):
    """An array holds something other than real numbers (strings, objects, complex), or a
    flag such as ``train_flg`` is not True or False."""


class LabelError(ChainruleError, ValueError):
    """Labels are out of range, of the wrong dtype, or do not match the batch."""


class StateError(ChainruleError, RuntimeError):
    """A method was called out of order, e.g. backward before forward."""


class DataError(ChainruleError, ValueError):
    """A dataset file is missing, truncated, corrupt, or holds non-finite values."""


class CheckpointError(ChainruleError, ValueError):
    """A checkpoint file is corrupt or does not match the network."""


class DownloadError(ChainruleError, OSError):
    """A file could not be downloaded from any mirror, or failed its checksum."""


class TrainingError(ChainruleError, ArithmeticError):
    """Training diverged: the loss or a gradient stopped being finite."""


class RendererNotFound(ChainruleError, RuntimeError):
    """No Graphviz program (``dot`` or ``graphviz-pure``) is installed to draw SVG or PNG."""


class RenderError(ChainruleError, RuntimeError):
    """The Graphviz program failed or did not finish in time."""


class SearchError(ChainruleError, RuntimeError):
    """A hyperparameter search cannot go on: its cluster has no workers, lacks chainrule,
    or lost a trial."""


class ArgumentError(ChainruleError, ValueError):
    """A function or constructor of the Python API was given a value it cannot use: a
    negative size, an unknown name, a learning rate that is not a number."""


class UnsafePickleError(ChainruleError, ValueError):
    """A pickle file names a global that reading plain arrays and numbers never needs, so
    it is refused before anything in it runs."""
