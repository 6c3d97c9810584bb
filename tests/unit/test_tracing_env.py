"""Which ``OTEL_*`` environments turn tracing on (services.tracing_env), and the tracer they
build: the exporters they name, the service's name, a clear error for an exporter that is
not installed."""

from __future__ import annotations

import pytest

from hookpost.services import tracing_env
from hookpost.services.tracing_env import TracingConfigError, exporter_names, load

ENDPOINT = "http://127.0.0.1:4318"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "hooks"}, []),  # naming the service alone exports nothing
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": ""}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": " Console , otlp "}, ["console", "otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console,none"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "false"}, ["console"]),
    ],
)
def test_exporter_names(env: dict[str, str], names: list[str]) -> None:
    assert exporter_names(env) == names
    assert tracing_env.requested(env) == bool(names)


def test_off_builds_nothing() -> None:
    assert load({}) is None


def test_console_builds_a_tracer_named_hookpost_unless_the_env_names_it() -> None:
    tracing = load({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing is not None
    try:
        assert tracing.provider.resource.attributes["service.name"] == "hookpost"
    finally:
        tracing.shutdown()


def test_the_service_name_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "hooks-eu")  # the SDK reads os.environ itself
    tracing = load({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing is not None
    try:
        assert tracing.provider.resource.attributes["service.name"] == "hooks-eu"
    finally:
        tracing.shutdown()


def test_an_exporter_that_is_not_installed_is_named() -> None:
    with pytest.raises(TracingConfigError, match="'nosuch'"):
        load({"OTEL_TRACES_EXPORTER": "nosuch"})
    grpc = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(TracingConfigError, match="otlp_proto_grpc"):
        load(grpc)
