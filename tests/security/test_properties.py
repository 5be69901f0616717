"""Property tests: any setting value, query literal or option value is a result or one clear line,
never a traceback, a hang or a secret."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasdb.query._compiler import compile
from nasdb.query._parser import parse
from nasdb.schema import settings as nasdb_settings
from nasdb.schema.db import check_url
from nasdb.schema.errors import InvalidRequest, NasdbError
from tests.security.conftest import Result

NUMBERS = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.from_regex(r"-?[0-9]{1,6}(\.[0-9]{0,4})?([eE][-+]?[0-9]{1,7})?[kMG%]?", fullmatch=True),
    st.text(max_size=12).filter(lambda t: "\x00" not in t),  # no environment holds a NUL
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=NUMBERS, name=st.sampled_from(["lease_seconds", "poll_seconds", "max_params",
                                            "reconnect_seconds", "sql_timeout_seconds"]))
def test_a_number_setting_is_a_positive_number_or_one_line(
        value: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    setting = next(s for s in nasdb_settings.SETTINGS if s.name == name)
    with monkeypatch.context() as m:
        m.setenv(setting.env_var, value)
        try:
            number = nasdb_settings.number(name)
        except InvalidRequest as e:
            assert str(e).startswith(setting.env_var) and "\n" not in str(e)
        else:
            assert number > 0 and number != float("inf")


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=NUMBERS)
def test_the_statement_timeout_is_one_postgresql_accepts_and_never_zero(
        value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setenv("NASDB_SQL_TIMEOUT_SECONDS", value)
        try:
            milliseconds = nasdb_settings.statement_timeout_ms()
        except InvalidRequest as e:
            assert str(e).startswith("NASDB_SQL_TIMEOUT_SECONDS=") and "\n" not in str(e)
        else:
            assert 1 <= milliseconds <= 2**31 - 1  # 0 is "no timeout" to PostgreSQL


@settings(max_examples=200, deadline=None)
@given(scheme=st.sampled_from(["mysql", "sqlite", "http", "postgresql", "postgres", "x"]),
       password=st.text(alphabet="abcdefXYZ0123456789!$", min_size=6, max_size=16))
def test_a_database_url_never_echoes_its_password(scheme: str, password: str) -> None:
    url = f"{scheme}://user:{password}@127.0.0.1:1/db"
    try:
        check_url(url)
    except InvalidRequest as e:
        assert password not in str(e)


# every way libpq takes a password; the server is a closed port on 127.0.0.1
URL_FORMS = ["postgresql://user:{}@127.0.0.1:1/db", "postgres://user:{}@127.0.0.1:1/db",
             "postgresql://user@127.0.0.1:1/db?password={}&connect_timeout=2",
             "host=127.0.0.1 port=1 dbname=db user=user password={}",
             "host=127.0.0.1 port=1 dbname=db user=user password='{} x'",
             "mysql://user:{}@127.0.0.1:1/db"]


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(form=st.sampled_from(URL_FORMS),
       password=st.text(alphabet="abcdefXYZ0123456789!$", min_size=6, max_size=16))
def test_no_command_echoes_a_database_password(
        cli: Callable[..., Result], form: str, password: str) -> None:
    result = cli("--database-url", form.format(password), "models")
    assert result.code in (2, 3), result
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result
    assert password not in result.err + result.out


LITERALS = st.one_of(
    st.from_regex(r"[0-9]{1,12}(\.[0-9]{0,6})?([eE][-+]?[0-9]{1,8})?(k|M|G|%|ms|s|h|d)?",
                  fullmatch=True),
    st.text(alphabet="0123456789.eE+-%kMG", min_size=1, max_size=20),
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(["params", "flops", "acc", "epochs", "latency", "depth", "lr",
                              "created", "limit"]),
       op=st.sampled_from(["<", "<=", ">", ">=", "="]), literal=LITERALS,
       nesting=st.integers(0, 150))
def test_a_query_literal_compiles_or_is_a_query_error_quickly(
        field: str, op: str, literal: str, nesting: int) -> None:
    text = f"{field} {literal}" if field == "limit" else f"{field}{op}{literal}"
    text = "(" * nesting + text + ")" * nesting if nesting % 2 else "not " * nesting + text
    started = time.thread_time()  # CPU time: the bound holds however loaded the machine is
    try:
        compile(parse(text))
    except NasdbError as e:
        assert str(e).startswith("query error")
    assert time.thread_time() - started < 2


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(option=st.sampled_from([("events", "--limit"), ("events", "--after"),
                               ("models", "--limit"), ("worker", "--max-jobs"),
                               ("worker", "--lease-seconds"), ("ui", "--port")]),
       value=st.one_of(st.integers(-10**20, 0).map(str), st.text(max_size=8),
                       st.just("1e400000"), st.just("nan")))
def test_a_bad_option_value_is_one_line_with_exit_code_2(
        cli: Callable[..., Result], option: tuple[str, str], value: str) -> None:
    command, flag = option
    result = cli(command, flag, value, "--help" if command == "ui" else "--format=json"
                 if command != "worker" else "--once")
    if result.code != 0:
        assert result.code == 2, result
        lines = result.err.strip().splitlines()
        assert lines[-1].startswith("error: ") and "Traceback" not in result.err, result


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(option=st.sampled_from([("events", "--limit"), ("events", "--after"),
                               ("train", "--seed"), ("train", "--epochs"),
                               ("train", "--batch-size"), ("train", "--priority")]),
       value=st.one_of(st.integers(2**31 - 1, 10**30), st.sampled_from([2**63, 10**20])))
def test_a_huge_option_value_is_a_result_or_one_line_with_exit_code_2(
        cli: Callable[..., Result], option: tuple[str, str], value: int) -> None:
    """Integers past what PostgreSQL (bigint) or the log's JSON holds are refused in words."""
    command, flag = option
    if command == "train":
        cli("dataset", "add", "digits")  # the first example registers it; the rest are refused
    extra = ("--format=json",) if command == "events" else ("--dataset", "digits",
                                                            "--reference", "cnn")
    result = cli(command, flag, str(value), *extra)
    if result.code != 0:
        assert result.code == 2, result
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, result
