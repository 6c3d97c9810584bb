"""Whether the standard ``OTEL_*`` environment variables ask for traces, and the tracer they
describe (docs/decisions/0035-tracing.md).

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter other than ``none``, or when an
OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``..._TRACES_ENDPOINT``: the exporter
is then ``otlp``), unless ``OTEL_SDK_DISABLED=true``. Otherwise nothing is imported and every
traced path costs one ``is None`` test. The SDK itself reads the rest: ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_BSP_*``, the exporters'
own variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hookpost.services.tracing import Tracing

OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
SERVICE_NAME = "hookpost"  # unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES names one


class TracingConfigError(ValueError):
    """An ``OTEL_*`` value hookpost cannot act on; the message says which and why."""


def exporter_names(env: Mapping[str, str]) -> list[str]:
    """The span exporters the environment asks for (empty: tracing is off)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip()
    if not raw:
        return ["otlp"] if any(env.get(v, "").strip() for v in OTLP_ENDPOINTS) else []
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    return [] if "none" in names else names


def requested(env: Mapping[str, str]) -> bool:
    return bool(exporter_names(env))


def load(env: Mapping[str, str]) -> Tracing | None:
    """The tracing the environment asks for, or None (without importing OpenTelemetry)."""
    names = exporter_names(env)
    if not names:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from hookpost.services.tracing import Tracing

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, env)))
    return Tracing(provider)


def _exporter(name: str, env: Mapping[str, str]) -> Any:
    """An exporter by its registered name (the ``opentelemetry_traces_exporter`` entry points
    the SDK and the exporter packages declare). ``otlp`` follows the OTLP protocol variable:
    ``http/protobuf`` (the specification's default) or ``grpc``."""
    wanted = name
    if name == "otlp":
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        wanted = "otlp_proto_grpc" if protocol == "grpc" else "otlp_proto_http"
    found = entry_points(group="opentelemetry_traces_exporter", name=wanted)
    if not found:
        extra = " (pip install 'hookpost[otlp]')" if wanted == "otlp_proto_http" else ""
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER: no span exporter named {wanted!r} is installed{extra}"
        )
    return next(iter(found)).load()()
