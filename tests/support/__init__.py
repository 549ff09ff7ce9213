"""Shared test helpers (not tests): import them as ``tests.support.<topic>``.

Fixtures stay in the ``conftest.py`` files; the helpers those fixtures and the tests use live
here, so no test imports another test module or a ``conftest`` (tests/test_architecture.py).
"""
