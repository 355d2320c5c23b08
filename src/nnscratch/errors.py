"""Exceptions and warnings of nnscratch, one class per family of problems.

Every layer of the package imports from here, so this module imports nothing
but the standard library.
"""


class NnscratchError(Exception):
    """Base class of every error nnscratch raises on purpose."""


class IdxFormatError(NnscratchError, ValueError):
    """An IDX file (the MNIST file format) is malformed."""


class DatasetError(NnscratchError):
    """A dataset is missing, fails its checksum or cannot be obtained."""


class DownloadError(DatasetError):
    """Every mirror failed for a dataset file."""


class ShapeError(NnscratchError, ValueError):
    """An array given to the package has the wrong shape or dtype."""


class TrainingDivergedError(NnscratchError, FloatingPointError):
    """The loss became NaN or infinite during training."""


class ModelFileError(NnscratchError, ValueError):
    """A model or checkpoint file is corrupt, truncated, tampered with or from a newer format."""


class ImageInputError(NnscratchError, ValueError):
    """An image given for prediction cannot be read or holds no digit."""


class NnscratchWarning(UserWarning):
    """Base class of nnscratch's warnings."""


class GradientWarning(NnscratchWarning):
    """A numerical gradient looks wrong (e.g. f ignores the perturbed array)."""


class DivergenceWarning(NnscratchWarning):
    """Gradient descent diverged or barely moved: look at the learning rate."""


# Calculus and gradient descent (chapter 4).
class GradientInputError(NnscratchError, ValueError):
    """An argument of numerical_diff / numerical_gradient / gradient_descent is unusable."""


class StepSizeError(GradientInputError):
    """The difference step h is so small that x + h == x: the derivative would be 0/0."""


class FunctionValueError(NnscratchError, ValueError):
    """A function being differentiated returned a non-scalar, NaN or inf."""


class ExpressionError(NnscratchError, ValueError):
    """A function typed by the user (e.g. "x0**2 + x1**2") is not a safe arithmetic expression."""


class ConfigError(NnscratchError, ValueError):
    """A hyper-parameter or option has an invalid value (e.g. a negative learning rate)."""


class ConvergenceWarning(NnscratchWarning):
    """An iterative fit stopped at its step limit before meeting its tolerance."""


class MissingExtraError(NnscratchError, ImportError):
    """An optional feature's package is not installed; the message names the extra to install."""


class FileWriteError(NnscratchError, OSError):
    """A file could not be written (full disk, no permission, missing folder); names the file."""
