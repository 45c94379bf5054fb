"""Storeline's API contract: the pydantic schemas shared by the backend and the store app.

Pure pydantic on purpose (no FastAPI, SQLModel or Flet), so the store app can load it in the browser.
"""
