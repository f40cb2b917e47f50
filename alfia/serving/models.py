"""Request and answer models of the service, generated from the run's schema.

A record has one optional field per feature column of the schema, with its type, unit, valid range and
categories; a field left out is written "not recorded" in the text, an unknown field is refused (422).
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from alfia.cohorts.schema import Column, Schema

STAY_ID_CHARS = 64


def _field(col: Column) -> tuple[Any, Any]:
    described = col.description + (f" ({col.unit})" if col.unit else "")
    lo, hi = col.valid if col.valid is not None else (None, None)
    if col.kind == "category":
        return Literal[col.categories] | None, Field(None, description=described)  # type: ignore[valid-type]
    if col.kind == "binary":
        return Literal[0, 1] | None, Field(None, description=described + "; 0 no, 1 yes")
    kind = int if col.kind == "int" else float
    return kind | None, Field(None, ge=lo, le=hi, allow_inf_nan=False, description=described)


def record_model(schema: Schema) -> type[BaseModel]:
    fields = {c.name: _field(c) for c in schema.columns if c.role == "feature"}
    name = "Record_" + "".join(part.capitalize() for part in schema.name.replace("-", "_").split("_"))
    return create_model(name, __config__=ConfigDict(extra="forbid"),
                        __doc__=f"One ICU stay in schema {schema.name!r}: {schema.description}", **fields)


def request_models(schema: Schema, max_stays: int, max_text_chars: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """(Stay, PredictRequest) with the service's limits built in."""
    Record = record_model(schema)  # noqa: N806 (a class)

    class Stay(BaseModel):
        """Either a structured ``record`` or a free clinical ``text``; ``stay_id`` is echoed back."""

        model_config = ConfigDict(extra="forbid")
        stay_id: int | str | None = Field(None, description="your id for the stay, echoed back")
        record: Record | None = None  # type: ignore[valid-type]
        text: str | None = Field(None, min_length=1, max_length=max_text_chars)

        @model_validator(mode="after")
        def _one_input(self):
            if (self.record is None) == (self.text is None):
                raise ValueError("give each stay exactly one of 'record' or 'text'")
            if isinstance(self.stay_id, str) and len(self.stay_id) > STAY_ID_CHARS:
                raise ValueError(f"stay_id is longer than {STAY_ID_CHARS} characters")
            return self

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        stays: list[Stay] = Field(min_length=1, max_length=max_stays)
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


class StayResult(BaseModel):
    stay_id: int | str | None
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
