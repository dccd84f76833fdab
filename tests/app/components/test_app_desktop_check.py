"""The desktop check before Qt starts: which platform, a display, the xcb system libraries."""

from __future__ import annotations

import pytest

from app.components.desktop_check import (
    APT_LINE,
    XCB_LIBRARIES,
    desktop_problem,
    missing_libraries,
    qt_platform,
)

X11 = {"DISPLAY": ":0"}


def _without(*names):
    """A fake library loader: everything loads except ``names``; records what was asked."""
    asked = []

    def load(name):
        asked.append(name)
        return name not in names

    load.asked = asked
    return load


def test_the_debian_case_names_the_missing_libraries_and_the_apt_line():
    load = _without("libxcb-icccm.so.4", "libxcb-keysyms.so.1")
    problem = desktop_problem(X11, "linux", load)
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in problem
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1\n" in problem
    assert APT_LINE in problem
    assert "libxcb-cursor0 " not in problem.split("\n")[1]  # not Qt's misleading guess
    assert set(load.asked) == {lib for lib, _ in XCB_LIBRARIES}


def test_nothing_missing_is_no_problem():
    assert desktop_problem(X11, "linux", _without()) is None
    assert missing_libraries(_without("libGL.so.1")) == [("libGL.so.1", "libgl1")]


@pytest.mark.parametrize(
    ("env", "platform"),
    [
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux"),
        ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, "linux"),
        ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"}, "linux"),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux"),
        ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}, "linux"),
        ({}, "win32"),
        ({}, "darwin"),
    ],
)
def test_other_platforms_are_not_checked(env, platform):
    load = _without(*(lib for lib, _ in XCB_LIBRARIES))
    assert desktop_problem(env, platform, load) is None
    assert load.asked == []


def test_platform_choice():
    assert qt_platform({"QT_QPA_PLATFORM": "xcb:dpi=96"}, "linux") == "xcb"
    assert qt_platform({"DISPLAY": ":1"}, "linux") == "xcb"
    assert qt_platform({"DISPLAY": ":1", "WAYLAND_DISPLAY": "w"}, "linux") == "xcb"
    assert qt_platform({}, "win32") == "win32"


def test_no_display_is_said_before_any_library_is_loaded():
    load = _without()
    problem = desktop_problem({}, "linux", load)
    assert "DISPLAY is not set" in problem and load.asked == []
    assert desktop_problem({"QT_QPA_PLATFORM": "xcb"}, "linux", load).startswith("No display")


def test_gui_refuses_to_start_qt_with_the_message(monkeypatch, capsys):
    import app.components.desktop_check as check
    from app.main import run_gui

    monkeypatch.setattr(check, "desktop_problem", lambda: "missing: libxcb-icccm.so.4")
    assert run_gui() == 2
    assert "libxcb-icccm.so.4" in capsys.readouterr().err
