"""Detection methods, one folder each (network, loss, trainer, detector and its ``SPEC`` in
``__init__``), and the shared pretrained backbones."""
