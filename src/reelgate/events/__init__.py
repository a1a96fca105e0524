"""Progress fan-out: the worker publishes task snapshots; streams and pages listen."""
