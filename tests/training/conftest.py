from tests.model.conftest import tiny_bert_dir  # noqa: F401  (the tiny random BERT of the model tests)
