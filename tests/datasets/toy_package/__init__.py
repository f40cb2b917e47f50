"""A toy data set, kept here as source files: tests/datasets/test_toy_package.py copies this folder to
TMP/alfia/datasets/toy/ and runs it through the CLI with TMP on PYTHONPATH. It shows that a data set is one package
and nothing else; nothing in alfia/ names it. Never imported from here."""

from alfia.cohorts.registry import register_dataset

register_dataset("toy", package=__name__, source_help="nothing: the toy stays are generated (--n, --seed)")
