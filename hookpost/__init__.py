"""hookpost: self-hosted webhook delivery."""

__version__ = "0.1.0"

# What library users pass the services (``hookpost.domain.inputs``).
_INPUTS = frozenset(
    {"NewApp", "AppChanges", "NewEventType", "EventTypeChanges", "NewEndpoint", "EndpointChanges"}
)


# The REST API's request models, which the library's resources take too (docs/library.md).
_REQUEST_MODELS = frozenset(
    {
        "ApplicationIn",
        "ApplicationPatch",
        "EndpointIn",
        "EndpointUpdate",
        "EndpointPatch",
        "EventTypeIn",
        "EventTypeUpdate",
        "EventTypePatch",
        "MessageIn",
        "RetryPolicyIn",
    }
)


def __getattr__(name: str) -> object:
    # Lazy, so `import hookpost.domain` stays free of I/O libraries.
    if name in ("Hookpost", "ListPage"):
        from hookpost import library

        return getattr(library, name)
    if name in _REQUEST_MODELS:
        from hookpost.api import schemas

        return getattr(schemas, name)
    if name in _INPUTS or name == "UNSET":
        from hookpost.domain import inputs

        return getattr(inputs, name)
    raise AttributeError(name)
