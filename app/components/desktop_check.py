"""Before Qt starts: is there a display, and are the X11 (xcb) system libraries there?

Qt's xcb platform plugin (the one a Linux desktop uses) needs about twenty system
libraries that a minimal Debian or Ubuntu does not install.  When one is missing, Qt
aborts the process (exit 134) with a message that names ``libxcb-cursor0`` whatever is
actually missing.  :func:`desktop_problem` looks for each library first and names the
missing ones and the one ``apt-get`` line that installs them.

Qt-free; :func:`desktop_problem` takes the environment and the library loader as
arguments so tests can fake both.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

#: (shared library the xcb plugin links, the Debian/Ubuntu package that ships it),
#: from ``ldd`` of PySide6's ``libqxcb.so`` and ``libQt6XcbQpa.so.6``
XCB_LIBRARIES = (
    ("libxcb.so.1", "libxcb1"),
    ("libX11.so.6", "libx11-6"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-randr.so.0", "libxcb-randr0"),
    ("libxcb-render.so.0", "libxcb-render0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-shm.so.0", "libxcb-shm0"),
    ("libxcb-sync.so.1", "libxcb-sync1"),
    ("libxcb-util.so.1", "libxcb-util1"),
    ("libxcb-xfixes.so.0", "libxcb-xfixes0"),
    ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon.so.0", "libxkbcommon0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libGL.so.1", "libgl1"),
    ("libEGL.so.1", "libegl1"),
    ("libfontconfig.so.1", "libfontconfig1"),
    ("libdbus-1.so.3", "libdbus-1-3"),
)
#: the line the README gives (every package above)
APT_LINE = "sudo apt-get install " + " ".join(pkg for _, pkg in XCB_LIBRARIES)


def _can_load(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def qt_platform(env: Mapping[str, str], platform: str = sys.platform) -> str:
    """The Qt platform plugin that will start: ``QT_QPA_PLATFORM``'s first choice, else
    Qt's default (``xcb`` on Linux, ``wayland`` in a Wayland session), else the name of the operating system's own plugin."""
    chosen = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen
    if not platform.startswith("linux"):
        return platform
    wayland_session = env.get("XDG_SESSION_TYPE") == "wayland" or not env.get("DISPLAY")
    if env.get("WAYLAND_DISPLAY") and wayland_session:
        return "wayland"
    return "xcb"


def missing_libraries(load: Callable[[str], bool] = _can_load) -> list[tuple[str, str]]:
    """``(library, package)`` of each xcb library that cannot be loaded."""
    return [(lib, pkg) for lib, pkg in XCB_LIBRARIES if not load(lib)]


def desktop_problem(
    env: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    load: Callable[[str], bool] = _can_load,
) -> str | None:
    """Why the GUI cannot start on this desktop (a readable paragraph), or None.

    Checks only what the xcb platform needs (a display, its libraries); ``offscreen``,
    ``wayland`` and the other platforms are left to Qt.
    """
    env = os.environ if env is None else env
    if qt_platform(env, platform) != "xcb":
        return None
    if not env.get("DISPLAY"):
        return (
            "No display: DISPLAY is not set, so the desktop application cannot open a window. "
            "Start it from a desktop session (or with ssh -X); the command-line commands "
            "(train, inspect, evaluate, demo) work without one, and "
            "QT_QPA_PLATFORM=offscreen python main.py screenshots renders the views to PNGs."
        )
    missing = missing_libraries(load)
    if not missing:
        return None
    libs = ", ".join(lib for lib, _ in missing)
    packages = " ".join(pkg for _, pkg in missing)
    return (
        f"The desktop application needs system libraries that are not installed: {libs}.\n"
        f"On Debian or Ubuntu install them with:\n    sudo apt-get install {packages}\n"
        f"(every library the X11 desktop needs: {APT_LINE})"
    )


__all__ = ["APT_LINE", "XCB_LIBRARIES", "desktop_problem", "missing_libraries", "qt_platform"]
