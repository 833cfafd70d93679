"""Prepare scripts as plain data: their S3 location, their statements as the engine's client splits them, and
a failure's words without row values."""

from __future__ import annotations

import pytest

from aurora_clone.prepare_script import (
    ScriptLocation,
    ScriptSyntaxError,
    mysql_error,
    postgres_error,
    split_statements,
)

PG, MY = "aurora-postgresql", "aurora-mysql"


def texts(script: str, engine: str = PG) -> list[tuple[int, int, str]]:
    return [(s.number, s.line, s.text) for s in split_statements(script, engine)]


def test_statements_are_numbered_with_the_line_they_start_on() -> None:
    script = "-- mask the customers\n\nUPDATE customers\n   SET email = 'x';\nDELETE FROM audit_log;\n\nANALYZE"
    assert texts(script) == [
        (1, 3, "UPDATE customers\n   SET email = 'x'"),
        (2, 5, "DELETE FROM audit_log"),
        (3, 7, "ANALYZE"),
    ]


def test_semicolons_inside_quotes_comments_and_dollar_quotes_end_nothing() -> None:
    script = (
        "UPDATE t SET a = 'it''s; fine', b = \"odd;name\";\n"
        "/* a; /* nested; */ still comment; */ SELECT 1;\n"
        "DO $body$ BEGIN UPDATE t SET a = $$;$$; END $body$;\n"
        "SELECT E'back\\'slash;';\n"
    )
    assert [text for _, _, text in texts(script)] == [
        "UPDATE t SET a = 'it''s; fine', b = \"odd;name\"",
        "SELECT 1",
        "DO $body$ BEGIN UPDATE t SET a = $$;$$; END $body$",
        "SELECT E'back\\'slash;'",
    ]


def test_line_numbers_count_the_lines_inside_strings_and_comments() -> None:
    script = "SELECT 'a\nb';\n/* one\ntwo */\nSELECT $$\n$$;\nSELECT 3;"
    assert [(number, line) for number, line, _ in texts(script)] == [(1, 1), (2, 5), (3, 7)]


def test_mysql_quotes_take_backslashes_and_hash_starts_a_comment() -> None:
    script = "UPDATE t SET a = 'x\\';y'; # a comment; still\nUPDATE t SET b = `c;d`;\nSELECT 1--1;"
    assert [text for _, _, text in texts(script, MY)] == [
        "UPDATE t SET a = 'x\\';y'",
        "UPDATE t SET b = `c;d`",
        "SELECT 1--1",  # MySQL's -- starts a comment only when a space follows
    ]


def test_a_postgresql_dollar_sign_in_a_name_or_parameter_is_no_quote() -> None:
    assert [text for _, _, text in texts("SELECT a$b, $1 FROM t; SELECT 2")] == ["SELECT a$b, $1 FROM t", "SELECT 2"]


def test_blank_and_comment_only_scripts_have_no_statements() -> None:
    assert texts("\n  -- nothing\n/* at all */ ;;\n") == []


@pytest.mark.parametrize(
    ("script", "engine", "said"),
    [
        ("SELECT 1;\nUPDATE t SET a = 'open", PG, "line 2: the ' quote opened here is never closed"),
        ("SELECT 1;\n\n/* open", PG, "line 3: the comment opened here is never closed"),
        ("DO $f$ BEGIN", PG, "line 1: the $f$ quote opened here is never closed"),
        ("DELIMITER //\nSELECT 1 //", MY, "line 1: DELIMITER is a command of the mysql client"),
    ],
)
def test_a_script_that_cannot_be_split_says_where(script: str, engine: str, said: str) -> None:
    with pytest.raises(ScriptSyntaxError, match=said.replace("$", r"\$")):
        split_statements(script, engine)


def test_locations_are_s3_uris_with_an_optional_version() -> None:
    assert ScriptLocation.parse("s3://masking/prod/mask%20v2.sql") == ScriptLocation("masking", "prod/mask v2.sql")
    assert ScriptLocation.parse("s3://masking/mask.sql?versionId=abc").version == "abc"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("masking/mask.sql", "is not an S3 URI"),
        ("s3://masking", "is not an S3 URI"),
        ("s3://Masking_Bucket/mask.sql", "is not an S3 bucket name"),
        ("s3://masking/mask.sql?versionId=", "may end in ?versionId="),
        ("s3://masking/mask.sql?acl=public", "may end in ?versionId="),
        ("s3://masking/" + "k" * 1025, "longer than S3's 1024 bytes"),
    ],
)
def test_what_is_no_location_is_refused_with_the_reason(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said.replace("?", r"\?")):
        ScriptLocation.parse(text)


def test_errors_that_quote_a_rows_value_are_worded_without_it() -> None:
    assert "ada@example.com" not in postgres_error(
        {"M": 'invalid input syntax for type integer: "ada@example.com"', "C": "22P02", "D": "ada@example.com"}
    )
    assert postgres_error({"M": 'syntax error at or near "UPDAT"', "C": "42601"}) == (
        'syntax error at or near "UPDAT" (SQLSTATE 42601)'
    )
    assert "ada" not in mysql_error(1062, "Duplicate entry 'ada@example.com' for key 'customers.email'")
    assert mysql_error(1064, "You have an error in your SQL syntax near 'UPDAT'") == (
        "You have an error in your SQL syntax near 'UPDAT' (MySQL error 1064)"
    )
