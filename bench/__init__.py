"""hookpost's benchmark harness: ``.venv/bin/python -m bench run`` (see BENCHMARKS.md)."""
