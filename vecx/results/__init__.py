"""Benchmark results: the record schema, the store (streaming writer, loader), compare.

* `vecx.results.schema`: every field of a record and its type, `result` and the one
  `check_record`;
* `vecx.results.store`: `ResultWriter` (one fsynced line per record while a run goes,
  one document at the end) and `load`;
* `vecx.results.compare`: two runs case by case, a change judged against both runs' noise.

This package imports no array framework; machine facts come from `vecx.environment`.
"""

from vecx.environment import ENV_VARS, machine_info, runtime_settings
from vecx.results.compare import (
    VERDICTS,
    Comparison,
    compare,
    has_regression,
    settings_differences,
)
from vecx.results.schema import (
    FIELDS,
    HEADER_KEYS,
    OPTIONAL_FIELDS,
    RESULT_KEYS,
    SCHEMA_VERSION,
    Record,
    check_record,
    headline_s,
    result,
)
from vecx.results.store import ResultWriter, load

__all__ = [
    "ENV_VARS",
    "FIELDS",
    "HEADER_KEYS",
    "OPTIONAL_FIELDS",
    "RESULT_KEYS",
    "SCHEMA_VERSION",
    "VERDICTS",
    "Comparison",
    "Record",
    "ResultWriter",
    "check_record",
    "compare",
    "has_regression",
    "headline_s",
    "load",
    "machine_info",
    "result",
    "runtime_settings",
    "settings_differences",
]
