"""The Jinja2 environment of the report: one template per section under ``templates/``, autoescaped (figures
are passed in as ``Markup``)."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from alfia.evaluation.metrics import format_ci

ENV = Environment(loader=PackageLoader("alfia.analysis.report", "templates"), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
ENV.filters["ci"] = format_ci


def render(template: str, **context) -> Markup:
    return Markup(ENV.get_template(template).render(**context))
