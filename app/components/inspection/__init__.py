"""Qt-free model of the inspection workflow: items, thresholds, verdicts, labels, stores, jobs."""
