"""Property-based fuzzing of every operation in the OpenAPI document (schemathesis, in process over ASGI).

For each operation a bounded number of generated requests, fitting the schema and not, is sent as HQ and as
the integration key, against a small loaded retailer. Nothing may answer 500, and every response must match
the schema documented for it. FUZZ_EXAMPLES raises the bound for a longer hunt (e.g. FUZZ_EXAMPLES=200).

(schemathesis's own pytest loader, `from_fixture`, does not work with pytest 9 yet, so operations are walked
here with the same in-process loader and checks.)
"""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests import retailer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
CHECKS = [not_a_server_error, response_schema_conformance]
RUN_PHASES = (Phase.explicit, Phase.generate)  # no shrinking: the failing request is reported as found, in bounded time


def fuzz(app, headers: dict[str, str], examples: int = EXAMPLES) -> dict[str, str]:
    """Failures by operation label ("POST /api/v1/orders"), each with schemathesis's reproduction."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1
        modes = [GenerationMode.POSITIVE]
        if op.query or op.body:  # something that can be wrong (a string path parameter cannot)
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=RUN_PHASES)
            def run(case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                continue  # e.g. only optional headers to negate: nothing invalid can be sent
            except Exception as e:  # noqa: BLE001 - collect every operation's failure, then report them all
                failures[f"{op.method.upper()} {op.path} ({mode.value})"] = str(e)[:3000]
    assert operations >= 10, "the OpenAPI document lost its operations"
    return failures


def _report(failures: dict[str, str]) -> str:
    return "\n\n".join(f"=== {label}\n{text}" for label, text in failures.items())


@pytest.mark.slow
def test_fuzz_as_hq(app, client, hq, integration):
    retailer.load(client, hq, integration)
    failures = fuzz(app, hq)
    assert not failures, _report(failures)


@pytest.mark.slow
def test_fuzz_as_integration(app, client, hq, integration, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("bounded run: the integration key is fuzzed on SQLite; the HQ run covers PostgreSQL")
    retailer.load(client, hq, integration)
    failures = fuzz(app, integration)
    assert not failures, _report(failures)
