from tests.serving.conftest import tiny_run  # noqa: F401  (the tiny trained run, as a fixture here too)
