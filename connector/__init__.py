"""karla-connector engine."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:  # one source of truth: pyproject.toml, as installed
    __version__ = version("karla-connector")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
