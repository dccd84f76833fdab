"""Pages and small shared widgets of the workstation (each ≲ 300 lines)."""
