"""Images and data sets: file I/O, pre-read checks, working geometry, foreground masks."""
