"""The `team` fixture lives in tests/conftest.py (billing tests use it too)."""
