"""Reusable controls: sync banner, scan field, large buttons, task cards."""
