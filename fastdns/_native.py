"""Import of the compiled hot path, with a message that says how to build it when it is missing."""

try:
    from fastdns import _core
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    raise ImportError(
        "fastdns's compiled extension (fastdns._core) is not built or not importable "
        f"({exc}). Build it with `pip install .` (or `pip install -e .` for development) from the "
        "repository root; this needs a C compiler and the Python headers. If you run from a "
        "checkout, make sure the installed package, not the bare source folder, is imported."
    ) from exc

__all__ = ["_core"]
