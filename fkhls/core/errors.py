"""The project's own exception types: the CLI turns each into one clear line and a non-zero exit."""


class FkhlsError(Exception):
    """Base of every error fkhls raises on purpose (bad input, unsupported model, failed build)."""


class UnsupportedModelError(FkhlsError):
    """The model holds a layer or quantizer that fkhls cannot export exactly."""


class ProjectError(FkhlsError):
    """A project directory is missing, malformed, or would be overwritten without --force."""


class OffGridError(FkhlsError):
    """Values are not representable exactly by a fixed-point type (off its grid or out of range)."""


class FaultSpecError(FkhlsError):
    """A fault descriptor names a layer, tensor, bit or rate outside the valid range."""


class AddressError(FkhlsError):
    """A hardware coordinate (array, element, bit, memory word) is outside the valid range."""


class BuildError(FkhlsError):
    """Compiling or running the C simulation failed."""
