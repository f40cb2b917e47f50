"""Prometheus metrics of the service: requests, latency, risk bands, input drift per variable and the stays
answered with a warning, by kind.

Drift is what a monitoring dashboard watches first: the share of records in which a variable is missing, and the
share in which its value lies outside the range seen in the training split. Only counts are kept, never values.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Monitor:
    def __init__(self, variables: list[str], ranges: dict[str, tuple[float, float]]):
        self.variables = variables
        self.ranges = ranges
        self.registry = r = CollectorRegistry()
        self.requests = Counter("alfia_requests", "HTTP requests answered", ["path", "status"], registry=r)
        self.latency = Histogram("alfia_request_seconds", "time to answer a request", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.stays = Counter("alfia_stays", "stays scored, by risk band and input kind", ["band", "input"],
                             registry=r)
        self.records = Counter("alfia_input_records", "structured records received", registry=r)
        self.missing = Counter("alfia_input_missing", "records with the variable missing", ["variable"], registry=r)
        self.outside = Counter("alfia_input_outside_training_range",
                               "records with the variable outside the training split's range", ["variable"],
                               registry=r)
        self.missing_share = Gauge("alfia_input_missing_share", "share of records with the variable missing",
                                   ["variable"], registry=r)
        self.outside_share = Gauge("alfia_input_outside_training_range_share",
                                   "share of records with the variable outside the training split's range",
                                   ["variable"], registry=r)
        self.warnings = Counter("alfia_stay_warnings", "stays scored with a warning, by kind (see the model card)",
                                ["kind"], registry=r)
        self._n = 0
        self._missing = dict.fromkeys(variables, 0)
        self._outside = dict.fromkeys(ranges, 0)

    def observe_record(self, record: dict) -> None:
        self._n += 1
        self.records.inc()
        for name in self.variables:
            value = record.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                self._missing[name] += 1
                self.missing.labels(name).inc()
            elif name in self.ranges:
                lo, hi = self.ranges[name]
                if not lo <= float(value) <= hi:
                    self._outside[name] += 1
                    self.outside.labels(name).inc()
        for name, count in self._missing.items():
            self.missing_share.labels(name).set(count / self._n)
        for name, count in self._outside.items():
            self.outside_share.labels(name).set(count / self._n)

    def observe_warnings(self, warnings: list[dict]) -> None:
        for kind in {w["kind"] for w in warnings}:
            self.warnings.labels(kind).inc()
