"""Dispatchers decide who runs a task; the embedded one is an in-process slot pool."""
