import pytest

from reelgate.backends.base import Orientation
from reelgate.catalog import Catalog, parse_size
from reelgate.errors import ModelNotFound
from reelgate.money import format_credits, parse_credits


def test_builtin_models() -> None:
    catalog = Catalog.build({})
    fifteen, ten = catalog.get("sora-2-hd-15s-chat"), catalog.get("sora-2-hd-10s-chat")
    assert (fifteen.seconds, ten.seconds) == (15, 10)
    assert fifteen.size_for(Orientation.PORTRAIT) == (1024, 1792)
    assert fifteen.size_for(Orientation.LANDSCAPE) == (1792, 1024)
    assert fifteen.backend == "procedural"
    assert fifteen.price > 0


def test_overrides_add_change_and_remove() -> None:
    catalog = Catalog.build(
        {
            "sora-2-hd-15s-chat": {"price": "2.5", "portrait": "720x1280"},
            "sora-2-hd-10s-chat": {"enabled": False},
            "preview-5s": {"seconds": 5, "fps": 12},
        }
    )
    assert catalog.get("sora-2-hd-15s-chat").price == parse_credits("2.5")
    assert catalog.get("sora-2-hd-15s-chat").size_for(Orientation.PORTRAIT) == (720, 1280)
    assert "sora-2-hd-10s-chat" not in catalog
    assert catalog.get("preview-5s").seconds == 5
    with pytest.raises(ModelNotFound):
        catalog.get("sora-2-hd-10s-chat")


@pytest.mark.parametrize(
    "override",
    [
        {"seconds": 0},
        {"seconds": "15"},
        {"fps": -1},
        {"portrait": "1023x1792"},
        {"price": "0.0000001"},
        {"colour": 1},
        {"refund_on": "sometimes"},
    ],
)
def test_bad_overrides_are_refused(override: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Catalog.build({"sora-2-hd-15s-chat": override})


def test_sizes() -> None:
    assert parse_size("1024x1792") == (1024, 1792)
    with pytest.raises(ValueError):
        parse_size("big")


def test_money_is_exact() -> None:
    assert parse_credits("0.1") * 3 == parse_credits("0.3")
    assert format_credits(parse_credits("12.500")) == "12.5"
    assert format_credits(parse_credits("7")) == "7"
    for bad in ("abc", "1e-9", "NaN", "inf"):
        with pytest.raises(ValueError):
            parse_credits(bad)


def test_dated_snapshots_resolve_to_their_model() -> None:
    catalog = Catalog.build({})
    assert catalog.get("sora-2-2025-10-06") is catalog.get("sora-2")
    assert catalog.get("sora-2-2025-12-08") is catalog.get("sora-2")
    assert catalog.get("sora-2-pro-2025-10-06") is catalog.get("sora-2-pro")
    assert set(catalog.aliases()) == {"sora-2-2025-10-06", "sora-2-2025-12-08", "sora-2-pro-2025-10-06"}


def test_a_removed_model_takes_its_snapshots_with_it() -> None:
    catalog = Catalog.build({"sora-2": {"enabled": False}})
    assert "sora-2-2025-10-06" not in catalog and "sora-2-pro-2025-10-06" in catalog
    with pytest.raises(ModelNotFound):
        catalog.get("sora-2-2025-12-08")
