"""hookpost: self-hosted webhook delivery."""

__version__ = "0.1.0"

# What library users pass the services (``hookpost.domain.inputs``).
_INPUTS = frozenset(
    {"NewApp", "AppChanges", "NewEventType", "EventTypeChanges", "NewEndpoint", "EndpointChanges"}
)


def __getattr__(name: str) -> object:
    # Lazy, so `import hookpost.domain` stays free of I/O libraries.
    if name == "Hookpost":
        from hookpost.wiring import Hookpost

        return Hookpost
    if name in _INPUTS or name == "UNSET":
        from hookpost.domain import inputs

        return getattr(inputs, name)
    raise AttributeError(name)
