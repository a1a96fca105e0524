"""The model catalog: which names clients may ask for, and what each one makes and costs.

Built-in entries mirror the provider (`sora-2-hd-15s-chat`, `sora-2-hd-10s-chat`). `reelgate.toml`
adds, changes or removes entries:

    [models."sora-2-hd-15s-chat"]
    price = "2.5"               # credits per call
    portrait = "720x1280"

    [models."sora-2-hd-10s-chat"]
    enabled = false             # remove a built-in entry

    [models."my-preview"]
    backend = "procedural"
    seconds = 5

OpenAI's dated snapshots (`sora-2-2025-10-06`, ...) are aliases: they resolve to their model's entry,
are listed in `/v1/models`, and go away with the model they name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from reelgate.backends.base import Orientation
from reelgate.errors import ModelNotFound
from reelgate.money import parse_credits

Size = tuple[int, int]

#: Which failed videos a model gives back (besides those the server caused, always refunded):
#: none, only those a safety system refused (`content_policy_violation`), or every one.
RefundOn = Literal["never", "moderation", "any_failure"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    backend: str
    seconds: int
    sizes: Mapping[Orientation, Size]
    fps: int
    price: int  #: micro-credits per call
    created: int = 1759276800  #: 2025-10-01, what `/v1/models` reports
    options: Mapping[str, Any] = field(default_factory=dict)  #: backend-specific settings
    #: Durations the Videos API may ask for; empty means only `seconds`. Chat always gets `seconds`.
    seconds_choices: tuple[int, ...] = ()
    #: Sizes the Videos API may ask for besides the two in `sizes` (e.g. sora-2-pro's 1024x1792).
    extra_sizes: tuple[Size, ...] = ()
    #: Micro-credits per second of video, added to `price` (OpenAI prices sora-2 by the second).
    price_per_second: int = 0
    #: This model's refunds; None follows the server's `charge_on_failure`.
    refund_on: RefundOn | None = None
    #: Micro-credits per second by resolution tier (`"1080p"`: a size's shorter side), for sizes of that
    #: tier instead of `price_per_second` (a 1080p second may cost more than a 720p second).
    tier_prices: Mapping[str, int] = field(default_factory=dict)

    def size_for(self, orientation: Orientation) -> Size:
        return self.sizes[orientation]

    @property
    def allowed_seconds(self) -> tuple[int, ...]:
        return self.seconds_choices or (self.seconds,)

    @property
    def allowed_sizes(self) -> tuple[Size, ...]:
        return (*self.sizes.values(), *(size for size in self.extra_sizes if size not in self.sizes.values()))

    def price_for(self, seconds: int, size: Size | None = None) -> int:
        """What one video of `seconds` (at `size`) costs, in micro-credits."""
        return self.price + self.second_price(size) * seconds

    def second_price(self, size: Size | None) -> int:
        """Micro-credits per second at `size`: its tier's price, else `price_per_second`."""
        return self.tier_prices.get(tier_of(size), self.price_per_second) if size else self.price_per_second


def tier_of(size: Size) -> str:
    """A size's resolution tier: `(720, 1280)` -> `"720p"`."""
    return f"{min(size)}p"


_HD_SIZES = {Orientation.PORTRAIT: (1024, 1792), Orientation.LANDSCAPE: (1792, 1024)}
_720P_SIZES = {Orientation.PORTRAIT: (720, 1280), Orientation.LANDSCAPE: (1280, 720)}

BUILTIN = (
    ModelEntry("sora-2-hd-15s-chat", "procedural", 15, _HD_SIZES, 24, parse_credits("1")),
    ModelEntry("sora-2-hd-10s-chat", "procedural", 10, _HD_SIZES, 24, parse_credits("0.8")),
    # OpenAI's Videos API models and rules: seconds "4" | "8" | "12" (default 4), 720p by default,
    # 1024p for sora-2-pro only, priced per second.
    ModelEntry(
        "sora-2",
        "procedural",
        4,
        _720P_SIZES,
        24,
        0,
        seconds_choices=(4, 8, 12),
        price_per_second=parse_credits("0.1"),
    ),
    ModelEntry(
        "sora-2-pro",
        "procedural",
        4,
        _720P_SIZES,
        24,
        0,
        seconds_choices=(4, 8, 12),
        extra_sizes=tuple(_HD_SIZES.values()),
        price_per_second=parse_credits("0.3"),
    ),
)


#: Dated snapshot ids OpenAI's clients send, and the model each one means.
ALIASES = {
    "sora-2-2025-10-06": "sora-2",
    "sora-2-2025-12-08": "sora-2",
    "sora-2-pro-2025-10-06": "sora-2-pro",
}


class Catalog:
    def __init__(self, entries: Mapping[str, ModelEntry], aliases: Mapping[str, str] = ALIASES) -> None:
        self._entries = dict(entries)
        self._aliases = {alias: name for alias, name in aliases.items() if name in entries and alias not in entries}

    @classmethod
    def build(cls, overrides: Mapping[str, Mapping[str, Any]]) -> Catalog:
        """Built-in entries with `overrides` applied; raises ValueError on a bad override."""
        entries = {entry.name: entry for entry in BUILTIN}
        for name, override in overrides.items():
            if override.get("enabled", True) is False:
                entries.pop(name, None)
                continue
            entries[name] = _apply(entries.get(name), name, override)
        return cls(entries)

    def get(self, name: object) -> ModelEntry:
        """The entry `name` means (an alias gives its model's entry); ModelNotFound otherwise."""
        if isinstance(name, str) and name in self._aliases:
            name = self._aliases[name]
        if not isinstance(name, str) or name not in self._entries:
            raise ModelNotFound(str(name), list(self._entries))
        return self._entries[name]

    def aliases(self) -> dict[str, ModelEntry]:
        """Each alias and the entry it resolves to."""
        return {alias: self._entries[name] for alias, name in self._aliases.items()}

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases


_KNOWN_KEYS = {
    "enabled",
    "backend",
    "seconds",
    "fps",
    "price",
    "portrait",
    "landscape",
    "options",
    "seconds_choices",
    "extra_sizes",
    "price_per_second",
    "refund_on",
    "price_per_second_by_tier",
}


def _apply(base: ModelEntry | None, name: str, override: Mapping[str, Any]) -> ModelEntry:
    unknown = set(override) - _KNOWN_KEYS
    if unknown:
        raise ValueError(f"model {name!r}: unknown catalog keys {sorted(unknown)}")
    entry = base or ModelEntry(name, "procedural", 10, _HD_SIZES, 24, parse_credits("1"))
    sizes = dict(entry.sizes)
    for orientation in Orientation:
        if orientation.value in override:
            sizes[orientation] = parse_size(override[orientation.value])
    changed = replace(
        entry,
        backend=str(override.get("backend", entry.backend)),
        seconds=_positive_int(name, "seconds", override.get("seconds", entry.seconds)),
        fps=_positive_int(name, "fps", override.get("fps", entry.fps)),
        price=parse_credits(override["price"]) if "price" in override else entry.price,
        sizes=sizes,
        options={**entry.options, **override.get("options", {})},
        seconds_choices=tuple(
            _positive_int(name, "seconds_choices", value)
            for value in override.get("seconds_choices", entry.seconds_choices)
        ),
        extra_sizes=(
            tuple(parse_size(value) for value in override["extra_sizes"])
            if "extra_sizes" in override
            else entry.extra_sizes
        ),
        price_per_second=(
            parse_credits(override["price_per_second"]) if "price_per_second" in override else entry.price_per_second
        ),
        refund_on=override.get("refund_on", entry.refund_on),
        tier_prices=(
            _tier_prices(name, override["price_per_second_by_tier"])
            if "price_per_second_by_tier" in override
            else entry.tier_prices
        ),
    )
    if changed.refund_on not in (None, *get_args(RefundOn)):
        raise ValueError(f"model {name!r}: refund_on must be one of {', '.join(get_args(RefundOn))}")
    if changed.seconds_choices and changed.seconds not in changed.seconds_choices:
        raise ValueError(f"model {name!r}: seconds {changed.seconds} is not among seconds_choices")
    return changed


def _tier_prices(name: str, value: object) -> dict[str, int]:
    if not isinstance(value, Mapping) or not all(re.fullmatch(r"[1-9]\d*p", str(tier)) for tier in value):
        raise ValueError(f'model {name!r}: price_per_second_by_tier maps tiers to credits: {{ "1080p" = "0.15" }}')
    return {str(tier): parse_credits(price) for tier, price in value.items()}


def parse_size(value: object) -> Size:
    """`"1024x1792"` to `(1024, 1792)`; both sides even, since H.264 in yuv420p needs that."""
    try:
        width, height = (int(part) for part in str(value).lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"not a size like 1024x1792: {value!r}") from exc
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"size must be even and at least 16x16: {value!r}")
    return width, height


def _positive_int(name: str, key: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"model {name!r}: {key} must be a positive integer, got {value!r}")
    return value
