"""The command line: ``commands`` (the parser, ``main``), one module per command or small
family (``train``, ``simulate``, ``inspection``, ``evaluate``, ``demo``, ``gui``; ``export-model``
is in ``core.deploy.cli``), ``sharded`` and ``ranks`` (``inspect`` under torchrun), ``args``
(checked argument types), ``support`` (exit codes, Ctrl-C, progress bars, checks),
``training_report`` (budgets, the training bar and summary), ``tables`` (result tables)."""
