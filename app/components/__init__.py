"""Qt-free model and job code of the GUI (napari's ``components``): the widgets in
:mod:`app._qt` bind to it by signals. Nothing here imports Qt (tests/test_boundaries.py)."""
