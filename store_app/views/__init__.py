"""Screens of the store app; each builds its controls from AppState and records taps through it."""
