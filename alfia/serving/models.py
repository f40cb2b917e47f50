"""Request and answer models of the service, generated from the run's schema. The same models validate every
request and make ``/openapi.json``, so the schema a client reads is the rule the service applies.

A stay is exactly one of a ``record`` or a ``text`` (``oneOf``). A record has one optional field per feature
column of the schema, with its type, unit, valid range and categories, and at least one field
(``minProperties``); a field left out is written "not recorded" in the text, an unknown field is refused. A text
has at least the run's minimum number of words (``pattern``; see :mod:`alfia.evaluation.drift`). Types are
strict: no boolean, string or number is converted into a field of another type (a whole-numbered float such as
``70.0`` is the only thing read as an integer, as JSON Schema counts it one). Every refusal is 422 with where and
why.
"""

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictStr,
    Tag,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from alfia.cohorts.schema import Column, Schema
from alfia.evaluation.drift import KINDS, count_words, words_pattern

STAY_ID_CHARS = 64
INT64 = 2**63


def _no_null_defaults(schema: dict, *_args) -> None:
    """A field that may be left out has no value when it is: drop the ``"default": null`` pydantic writes,
    which the field's own type would refuse."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]


def _whole(value: Any) -> Any:
    """70.0 -> 70: JSON Schema's "integer" includes whole-numbered floats; nothing else is converted."""
    return int(value) if type(value) is float and value.is_integer() else value


WholeNumber = Annotated[int, BeforeValidator(_whole)]
STRICT = ConfigDict(extra="forbid", strict=True, json_schema_extra=_no_null_defaults)


def _field(col: Column) -> tuple[Any, Any]:
    described = col.description + (f" ({col.unit})" if col.unit else "")
    lo, hi = col.valid if col.valid is not None else (None, None)
    lo, hi = (None if b is None or math.isinf(b) else b for b in (lo, hi))  # an open end is no bound
    if col.kind == "category":
        return Literal[col.categories], Field(None, description=described)  # type: ignore[valid-type]
    if col.kind == "binary":
        return WholeNumber, Field(None, ge=0, le=1, description=described + "; 0 no, 1 yes")
    kind = WholeNumber if col.kind == "int" else float
    return kind, Field(None, ge=lo, le=hi, allow_inf_nan=False, description=described)


def record_model(schema: Schema) -> type[BaseModel]:
    fields = {c.name: _field(c) for c in schema.columns if c.role == "feature"}
    name = "Record_" + "".join(part.capitalize() for part in schema.name.replace("-", "_").split("_"))

    def at_least_one(extra: dict, *_args) -> None:
        _no_null_defaults(extra)
        extra["minProperties"] = 1

    class Base(BaseModel):
        model_config = {**STRICT, "json_schema_extra": at_least_one}

        @model_validator(mode="before")
        @classmethod
        def _not_empty(cls, data):
            if isinstance(data, dict) and not data:
                raise PydanticCustomError("empty_record", "the record has no variable: a stay with nothing "
                                          "recorded cannot be scored; give at least one")
            return data

    return create_model(name, __base__=Base,
                        __doc__=f"One ICU stay in schema {schema.name!r}: {schema.description}. Leave out what "
                                "was not recorded; at least one variable.", **fields)


def _input_of(stay: Any) -> str | None:
    """Which of the two kinds of stay a request's stay is: the field it gives (None, refused, for anything else)."""
    keys = stay if isinstance(stay, dict) else vars(stay) if isinstance(stay, BaseModel) else {}
    return "record" if "record" in keys else "text" if "text" in keys else None


def request_models(schema: Schema, max_stays: int, max_text_chars: int,
                   min_words: int = 1) -> tuple[type[BaseModel], type[BaseModel]]:
    """(Stay, PredictRequest) with the service's limits built in; ``min_words``: the run's refusal threshold."""
    Record = record_model(schema)  # noqa: N806 (a class)
    StayId = Annotated[StrictStr, Field(max_length=STAY_ID_CHARS)] | Annotated[  # noqa: N806 (a type)
        WholeNumber, Field(ge=-INT64, le=INT64 - 1)]
    pattern = words_pattern(min_words)

    def enough_words(text: str) -> str:
        if not re.search(pattern, text):
            n = count_words(text)
            raise PydanticCustomError(
                "too_few_words", "the text has {words}; texts under {min_words} words are refused (half the "
                "shortest training text): it cannot be read as a patient's description",
                {"words": f"{n} word" + ("" if n == 1 else "s"), "min_words": min_words})
        return text

    Text = Annotated[str, Field(min_length=1, max_length=max_text_chars,  # noqa: N806 (a type)
                                json_schema_extra={"pattern": pattern},
                                description=f"a clinical description of the first 24 hours, at least {min_words} "
                                            "words (runs of characters between spaces, tabs and newlines)"),
                     AfterValidator(enough_words)]
    id_field = Field(None, description="your id for the stay (a string or an integer), echoed back")

    class RecordStay(BaseModel):
        """A structured record, written as text by the run's own encoder."""

        model_config = STRICT
        stay_id: StayId = id_field
        record: Record  # type: ignore[valid-type]

    class TextStay(BaseModel):
        """A clinical text, read as given."""

        model_config = STRICT
        stay_id: StayId = id_field
        text: Text

    Stay = Annotated[Annotated[RecordStay, Tag("record")] | Annotated[TextStay, Tag("text")],  # noqa: N806
                     Discriminator(_input_of, custom_error_type="stay_input",
                                   custom_error_message="give each stay exactly one of 'record' or 'text'")]

    class PredictRequest(BaseModel):
        model_config = STRICT
        stays: list[Stay] = Field(min_length=1, max_length=max_stays)  # type: ignore[valid-type]
        explain: bool = Field(False, description="also each variable's effect on the risk when left out "
                                                 "(records only)")

    return Stay, PredictRequest


class Word(BaseModel):
    word: str
    weight: float


class Effect(BaseModel):
    variable: str
    wording: str = Field(description="the schema's clinical description of the variable")
    value: int | float | str
    effect: float = Field(description="probability with the value minus probability with it not recorded")


class InputWarning(BaseModel):
    kind: Literal[KINDS]  # type: ignore[valid-type]
    message: str


class StayResult(BaseModel):
    stay_id: int | str | None
    warnings: list[InputWarning] = Field(description="how far the stay lies from the training data (empty: within "
                                                     "it); the stay is scored all the same")
    out_of_distribution: bool | None = Field(description="a warning other than truncation; null when the run has "
                                                         "no training reference")
    probability: float
    band: str
    alert: bool = Field(description="probability at or above the run's validation-chosen threshold")
    layer_weights: list[float]
    top_words: list[Word]
    words: list[Word] = Field(description="every word of the text in order, with its attention weight")
    text: str
    explanation: list[Effect] | None = None


class PredictResponse(BaseModel):
    threshold: float
    results: list[StayResult]


class Problem(BaseModel):
    loc: list[str | int] = Field(description="where: body, stays, the stay's index, its kind, the field")
    msg: str
    type: str


class Refused(BaseModel):
    """422: what was refused and why (the submitted values are not echoed)."""

    detail: list[Problem]


class TooLarge(BaseModel):
    """413: the body is larger than the service takes."""

    detail: str
