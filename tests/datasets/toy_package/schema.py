"""The toy schema: three first-day variables and one severity score."""

from alfia.cohorts.schema import Column, Schema

SCHEMA = Schema(name="toy", description="a toy ICU data set (invented stays)", columns=(
    Column("age", "float", "age at ICU admission", unit="years", valid=(18, 110), decimals=0),
    Column("lactate", "float", "highest lactate in the first 24 h", unit="mmol/L", valid=(0, 30)),
    Column("sepsis", "binary", "sepsis on admission"),
    Column("toy_score", "int", "a toy severity score", unit="points", valid=(0, 10), label="toy score"),
))
