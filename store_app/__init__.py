"""Storeline store app: a Flet app that runs client-side in the tablet's browser (Pyodide) or in Flet's
server web mode, from the same code."""
