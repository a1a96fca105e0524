"""diffusers' cache hooks (skip work on steps that change little), chosen per model in the catalog.

    kind         options (default)                                              breaks compiled graphs
    first-block  threshold (0.05)                                               yes
    taylorseer   cache_interval (5), disable_cache_before_step (3),             no
                 disable_cache_after_step (none), max_order (1)
    mag          mag_ratios (required), threshold (0.06), max_skip_steps (3),   yes
                 retention_ratio (0.2)

Each kind's options are typed and checked when the catalog is read, and so is the family: a choice
that cannot run fails at start-up naming what works, never in the first request. `mag_ratios` are
the checkpoint's own (one calibration run with diffusers' `MagCacheConfig(calibrate=True)` prints
them). Not offered: `faster` (diffusers' FasterCache expects the conditional and unconditional
passes in one batch, which Wan runs apart, and LTX's packed tokens break its tensor format).
A hook that breaks graphs is compiled without `fullgraph` (see `loader.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reelgate.backends.diffusion.families import Family

#: Each kind's options and their types; `None` in a type tuple allows an explicit null.
OPTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "first-block": {"threshold": (float, int)},
    "taylorseer": {
        "cache_interval": (int,),
        "disable_cache_before_step": (int,),
        "disable_cache_after_step": (int, type(None)),
        "max_order": (int,),
    },
    "mag": {
        "mag_ratios": (list, tuple),
        "threshold": (float, int),
        "max_skip_steps": (int,),
        "retention_ratio": (float, int),
    },
}
REQUIRED = {"mag": ("mag_ratios",)}
#: Kinds whose hooks run outside the compiled graph (`torch.compiler.disable`): no `fullgraph`.
GRAPH_BREAKING = ("first-block", "mag")


@dataclass(frozen=True)
class CacheChoice:
    kind: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def breaks_graphs(self) -> bool:
        return self.kind in GRAPH_BREAKING

    def hook_config(self, steps: int) -> Any:
        """diffusers' config object for this choice, for a pipeline run of `steps` steps."""
        import diffusers

        options = dict(self.options)
        if self.kind == "first-block":
            return diffusers.FirstBlockCacheConfig(**options)
        if self.kind == "taylorseer":
            return diffusers.TaylorSeerCacheConfig(**options)
        return diffusers.MagCacheConfig(num_inference_steps=steps, **options)


def parse_cache(value: object, family: Family) -> CacheChoice:
    """`{"kind": "first-block", "threshold": 0.05}` checked for `family`; ValueError saying what works."""
    if not isinstance(value, Mapping) or value.get("kind") not in OPTIONS:
        kinds = value.get("kind") if isinstance(value, Mapping) else value
        raise ValueError(f"`cache.kind` must be one of {list(OPTIONS)}, got {kinds!r}")
    kind = value["kind"]
    if kind not in family.caches:
        raise ValueError(
            f"`cache.kind` {kind!r} does not run on family {family.name!r}; use one of {list(family.caches)}"
        )
    options = {key: item for key, item in value.items() if key != "kind"}
    allowed = OPTIONS[kind]
    for key, item in options.items():
        if key not in allowed:
            raise ValueError(f"`cache` of kind {kind!r} takes {sorted(allowed)}, not {key!r}")
        if isinstance(item, bool) or not isinstance(item, allowed[key]):
            raise ValueError(f"`cache.{key}` must be {' or '.join(t.__name__ for t in allowed[key])}, got {item!r}")
    missing = [key for key in REQUIRED.get(kind, ()) if key not in options]
    if missing:
        raise ValueError(
            f"`cache` of kind {kind!r} needs {missing}: the checkpoint's magnitude ratios, printed by one "
            "calibration run (diffusers' `MagCacheConfig(calibrate=True)`)"
        )
    if "mag_ratios" in options:
        options["mag_ratios"] = tuple(float(ratio) for ratio in options["mag_ratios"])
    return CacheChoice(kind, tuple(sorted(options.items())))
