"""The commands for daily work, over the REST API (``app``, ``endpoint``, ``send``,
``attempts``, ``tail``, ``resend``, ``replay``) and ``doctor``.

Each module has ``register(sub)``, which adds its subcommands to the ``hookpost`` parser; a new
command is a module here and a line in ``MODULES``."""

from __future__ import annotations

from importlib import import_module

from hookpost.commands.options import Subparsers

MODULES = (
    "hookpost.commands.apps",
    "hookpost.commands.endpoints",
    "hookpost.commands.messages",
    "hookpost.commands.attempts",
    "hookpost.commands.replay",
    "hookpost.commands.doctor",
)


def register_commands(sub: Subparsers) -> None:
    for name in MODULES:
        import_module(name).register(sub)
