from __future__ import annotations

import showrunner


def test_all_is_sorted_and_complete() -> None:
    assert showrunner.__all__ == sorted(showrunner.__all__)
    for name in showrunner.__all__:
        assert getattr(showrunner, name) is not None


def test_unknown_attribute() -> None:
    try:
        showrunner.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
