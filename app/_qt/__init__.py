"""The Qt views: main window, workflow pages, widgets and the Qt workers that run core's long
work in threads."""
