"""The prediction task as an object: what is predicted (the label column and its meaning in words), from which
window of the stay, at what time, and which stays are left out.

A cohort carries its task (:attr:`alfia.cohorts.Cohort.task`), and every piece of code reads the label column from
it (``cohort.task.label``), never from a constant: the same eICU stays can be labelled with death in the ICU (YAIB's
mortality24) or with death in hospital (CW-24), and a run trained under one task warns when it scores a cohort
of the other. Each data set declares the task its builder produces (``Schema.task``); the cohort file, the run's
config and manifest, the report, the service's ``/v1/model`` and the leaderboards name it.

Times are hours from ICU admission; the input window is half-open, ``[start, end)``, as the builders use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from alfia.errors import AlfiaError


@dataclass(frozen=True)
class Task:
    """One prediction task: one prediction per ICU stay at ``prediction_time`` hours after ICU admission, from
    the data in ``window`` (hours from ICU admission, half-open), of the outcome in the ``label`` column (0/1)."""

    name: str  # e.g. "cw24-in-hospital-mortality"
    label: str  # the label column of the cohort table
    outcome: str  # what label 1 means, in words
    window: tuple[float, float] = (0.0, 24.0)  # [start, end) in hours from ICU admission
    prediction_time: float = 24.0  # hours from ICU admission
    exclusions: tuple[str, ...] = ()  # every exclusion criterion, in words
    source: str = ""  # where the definition comes from
    inputs: str = ""  # the input window in words where it is not ``window`` of the ICU stay (e.g. a MEDS label file)

    def __post_init__(self) -> None:
        start, end = self.window
        if not 0 <= start < end or self.prediction_time < end:
            raise ValueError(f"task {self.name!r}: the window [{start:g} h, {end:g} h) must end at or before the "
                             f"prediction time ({self.prediction_time:g} h)")

    @property
    def title(self) -> str:
        """One line for people: 'death in hospital, predicted at 24 h from the first 24 h of the ICU stay'."""
        start, end = self.window
        if self.inputs:
            return f"{self.outcome}, from {self.inputs}"
        span = f"the first {end:g} h" if start == 0 else f"hours {start:g}-{end:g}"
        return f"{self.outcome}, predicted at {self.prediction_time:g} h from {span} of the ICU stay"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["window"], out["exclusions"] = list(self.window), list(self.exclusions)
        if not self.inputs:  # files written before the field existed read the same
            del out["inputs"]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Task:
        """The task a file names: a registered task by name (its definition checked against the file's), or the
        file's own definition when the name is unknown here."""
        try:
            task = cls(name=str(data["name"]), label=str(data["label"]), outcome=str(data.get("outcome", "")),
                       window=tuple(float(x) for x in data.get("window", (0.0, 24.0))),
                       prediction_time=float(data.get("prediction_time", 24.0)),
                       exclusions=tuple(str(x) for x in data.get("exclusions", ())),
                       source=str(data.get("source", "")), inputs=str(data.get("inputs", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise AlfiaError(f"the task recorded in the file is not readable ({exc}); rebuild the cohort with "
                             "`alfia cohort`") from None
        known = TASKS.get(task.name)
        return known if known is not None and known.label == task.label else task

    def differs(self, other: Task) -> str:
        """"" when ``other`` is the same task, else one phrase saying how they differ (for the cross-task warning)."""
        if other == self:
            return ""
        if other.label != self.label:
            return f"label {other.label!r} ({other.outcome}) instead of {self.label!r} ({self.outcome})"
        return f"task {other.name!r} instead of {self.name!r}"


CW24 = Task(
    name="cw24-in-hospital-mortality",
    label="hospital_mortality",
    outcome="death in hospital",
    exclusions=("not the first ICU stay of the hospital stay (MIMIC-IV: of the patient's first hospital admission)",
                "age < 18 years", "outcome (hospital discharge status) unknown"),
    source="the ALFIA paper, section 3.1 (CW-24)",
)

YAIB_MORTALITY24 = Task(
    name="yaib-mortality24",
    label="icu_mortality",
    outcome="death in the ICU",
    exclusions=("ICU stay < 6 h", "fewer than 4 hours with any measurement",
                "a gap of more than 12 h between measurements", "age < 18 years",
                "death within the first 30 h", "ICU stay < 30 h"),
    source="YAIB (van de Water et al., ICLR 2024), task Mortality24; github rvandewater/YAIB-cohorts",
)

TASKS: dict[str, Task] = {t.name: t for t in (CW24, YAIB_MORTALITY24)}


def task_labels() -> set[str]:
    """The label column of every known task: no schema may declare one as its own column."""
    return {t.label for t in TASKS.values()}


def register_task(task: Task) -> Task:
    """Make ``task`` known by name (a user's own task); a name already taken must keep its definition."""
    if task.name in TASKS and TASKS[task.name] != task:
        raise AlfiaError(f"task {task.name!r} is already registered with another definition; choose another name")
    TASKS[task.name] = task
    return task


def get_task(name: str | Task) -> Task:
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise AlfiaError(f"unknown task {name!r}; known tasks are {', '.join(TASKS)}")
    return TASKS[name]


def task_names() -> list[str]:
    return list(TASKS)


def task_of_run(folder) -> Task:
    """The task a run folder (:class:`alfia.run_folder.RunFolder`) was trained on: its config's ``task``; for runs
    from before tasks were recorded, its schema's task (every builder then produced CW-24)."""
    config = folder.config()
    if isinstance(config.get("task"), dict):
        return Task.from_dict(config["task"])
    schema = (config.get("cohort") or {}).get("schema")
    if schema:
        from alfia.cohorts.registry import dataset_names, get_schema

        if schema in dataset_names():
            return get_schema(schema).task
    return CW24
