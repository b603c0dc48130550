"""The protocol functions against the shared table that the Rust tests read
too (tests/fixtures/fault-protocol-cases.json): a row that fails here means
the Python package drifted from slocheck's built-in target and load engine."""

import pytest

from conftest import CASES
from slocheck_faults import Fault, FaultHeaderError, honoured, parse
from slocheck_faults.protocol import resolve_token


@pytest.mark.parametrize("case", CASES["headers"], ids=lambda c: repr(c["header"]))
def test_header_grammar(case):
    want = case["fault"]
    if want is None:
        with pytest.raises(FaultHeaderError):
            parse(case["header"])
        return
    got = parse(case["header"])
    assert got == Fault(status=want["status"], delay_us=want["delay_us"])
    assert got.encode() == case["applied"]
    # The canonical form parses back to the same fault.
    assert parse(got.encode()) == got


@pytest.mark.parametrize("case", CASES["security"], ids=lambda c: f"{c['peer']}-{c['token']}-{sorted(c['presented'])}")
def test_security_rule(case):
    headers = list(case["presented"].items())
    assert honoured(case["peer"], headers, case["token"]) is case["honoured"]


def test_non_ascii_header_is_malformed():
    with pytest.raises(FaultHeaderError):
        parse("status=503\u00e9")


def test_token_from_argument_else_environment(monkeypatch):
    monkeypatch.setenv("SLOCHECK_FAULT_TOKEN", " from-env ")
    assert resolve_token(None) == "from-env"
    assert resolve_token("from-arg") == "from-arg"
    monkeypatch.setenv("SLOCHECK_FAULT_TOKEN", "")
    assert resolve_token(None) is None
    monkeypatch.delenv("SLOCHECK_FAULT_TOKEN")
    assert resolve_token(None) is None
