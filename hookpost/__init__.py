"""hookpost: self-hosted webhook delivery."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazy, so `import hookpost.domain` stays free of I/O libraries.
    if name == "Hookpost":
        from hookpost.wiring import Hookpost

        return Hookpost
    raise AttributeError(name)
