"""Prepare scripts (``PrepareScript``): where one is stored, its statements, and what is said of a run. Plain data.

A script is a SQL file in S3, named ``s3://bucket/key`` (optionally ``?versionId=...``). The in-VPC function
(``aurora_clone.probe``) reads it and runs its statements in the clone as the master user; this module splits
it into statements the way the engine's own client would (quotes, comments and PostgreSQL's dollar quoting
respected), so a failure names the statement's number and line, and words a failure without the rows' values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

# S3 bucket names: 3-63 characters of lower-case letters, digits, dots and hyphens, starting and ending with a
# letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024  # S3's limit for an object key
MAX_SCRIPT_BYTES = 16 * 1024 * 1024  # a masking script is statements, not data: bigger is a mistake
_IDENTIFIER_CHAR = re.compile(r"[A-Za-z0-9_$]")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
# PostgreSQL error classes whose messages can quote a row's value (data exceptions, integrity violations).
_POSTGRES_VALUE_CLASSES = ("22", "23")
# MySQL errors whose messages quote a row's value (duplicate entry, incorrect or out-of-range value, truncation).
_MYSQL_VALUE_ERRORS = frozenset({1062, 1264, 1265, 1292, 1366, 1411, 1586, 3819})


@dataclass(frozen=True)
class ScriptLocation:
    """An S3 object holding a prepare script; ``version``: the object version asked for ("" for the latest).

    >>> ScriptLocation.parse("s3://masking/prod-db/mask.sql?versionId=3Lg").uri
    's3://masking/prod-db/mask.sql?versionId=3Lg'
    >>> ScriptLocation.parse("https://masking.s3.amazonaws.com/mask.sql")
    Traceback (most recent call last):
    ...
    ValueError: is not an S3 URI of the form s3://bucket/key (optionally ?versionId=...)
    """

    bucket: str
    key: str
    version: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}" + (f"?versionId={self.version}" if self.version else "")

    @classmethod
    def parse(cls, text: str) -> ScriptLocation:
        """The location ``text`` names; ValueError with the reason (without the value) when it names none."""
        match = re.fullmatch(r"s3://([^/?]+)/([^?]+)(?:\?(.*))?", text)
        if match is None:
            raise ValueError("is not an S3 URI of the form s3://bucket/key (optionally ?versionId=...)")
        bucket, key, query = match.group(1), unquote(match.group(2)), match.group(3)
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise ValueError(f"names the bucket '{bucket}', which is not an S3 bucket name")
        if len(key.encode()) > MAX_KEY_BYTES:
            raise ValueError(f"has a key longer than S3's {MAX_KEY_BYTES} bytes")
        version = ""
        if query is not None:
            asked = parse_qs(query, keep_blank_values=True)
            if set(asked) != {"versionId"} or len(asked["versionId"]) != 1 or not asked["versionId"][0]:
                raise ValueError("may end in ?versionId=<version> and nothing else")
            version = asked["versionId"][0]
        return cls(bucket, key, version)


def prepared_with(location: ScriptLocation, version_id: str, etag: str) -> str:
    """What ran, for the ``PreparedWith`` attribute: the object's version when the bucket keeps versions,
    else its ETag.

    >>> prepared_with(ScriptLocation("masking", "mask.sql"), "", '"9b2cf535f27731c974343645a3985328"')
    's3://masking/mask.sql (ETag 9b2cf535f27731c974343645a3985328)'
    >>> prepared_with(ScriptLocation("masking", "mask.sql"), "3Lg", "")
    's3://masking/mask.sql?versionId=3Lg'
    """
    if version_id and version_id != "null":  # S3 says "null" for an object stored before versioning
        return ScriptLocation(location.bucket, location.key, version_id).uri
    return f"s3://{location.bucket}/{location.key} (ETag {etag.strip(chr(34))})"


def readable_from(location: ScriptLocation, patterns: tuple[str, ...]) -> bool:
    """Whether one of the S3 object ARN patterns (IAM's ``*`` and ``?`` wildcards) covers ``location``.

    >>> readable_from(ScriptLocation("masking", "prod/mask.sql"), ("arn:aws:s3:::masking/prod/*",))
    True
    >>> readable_from(ScriptLocation("masking", "mask.sql"), ("arn:aws:s3:::masking/prod/*",))
    False
    """
    wanted = f"{location.bucket}/{location.key}"
    for pattern in patterns:
        parts = pattern.split(":", 5)
        if len(parts) != 6 or parts[2] != "s3":
            continue
        # IAM's wildcards only: every other character, [ and ] included, stands for itself.
        expression = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in parts[5])
        if re.fullmatch(expression, wanted, re.DOTALL):
            return True
    return False


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its number (from 1), the line it starts on, and its text."""

    number: int
    line: int
    text: str


class ScriptSyntaxError(ValueError):
    """The script cannot be split into statements (a quote or comment never closed, a client command)."""


def split_statements(script: str, engine: str) -> list[Statement]:
    """The statements of ``script`` for ``engine`` (``aurora-postgresql`` or ``aurora-mysql``), each ended by
    a ``;`` outside quotes and comments; the last may go without one. Blank and comment-only parts are no
    statements.

    >>> script = "-- mask\\nUPDATE t SET a = 'x;y';\\n\\nSELECT 1"
    >>> [(s.number, s.line, s.text) for s in split_statements(script, "aurora-postgresql")]
    [(1, 2, "UPDATE t SET a = 'x;y'"), (2, 4, 'SELECT 1')]
    >>> split_statements("DO $$ BEGIN PERFORM 1; END $$;", "aurora-postgresql")[0].text
    'DO $$ BEGIN PERFORM 1; END $$'
    """
    postgres = engine.endswith("postgresql")
    statements: list[Statement] = []
    start, start_line, line, at = 0, 0, 1, 0  # start_line 0: no code of the next statement seen yet

    def close(end: int) -> None:
        text = script[start:end].strip()
        if start_line and text:
            statements.append(Statement(len(statements) + 1, start_line, text))

    while at < len(script):
        char = script[at]
        if char.isspace():
            line += char == "\n"
            at += 1
        elif _comment_to_line_end(script, at, postgres):
            at = _line_end(script, at)
        elif script.startswith("/*", at):
            at, line = _block_comment_end(script, at, line, nested=postgres)
        elif char == ";":
            close(at)
            start_line = 0
            at += 1
        else:
            if not start_line:
                start, start_line = at, line
                if not postgres and re.match(r"delimiter\s", script[at : at + 10], re.IGNORECASE):
                    raise ScriptSyntaxError(
                        f"line {line}: DELIMITER is a command of the mysql client, not SQL; end each statement with ;"
                    )
            at, line = _past_token(script, at, line, postgres)
    close(len(script))
    return statements


def _past_token(script: str, at: int, line: int, postgres: bool) -> tuple[int, int]:
    """Where the code at ``at`` goes on: past a whole quoted string, quoted name or dollar-quoted body, or one
    character; and the line there."""
    char = script[at]
    if char in "'\"`":
        escaped_string = char == "'" and at > 0 and script[at - 1] in "eE" and not _ident_before(script, at - 1)
        backslash = (not postgres and char != "`") or escaped_string
        return _quoted_end(script, at, line, char, backslash=backslash)
    if char == "$" and postgres and not _ident_before(script, at):
        tag = _DOLLAR_TAG.match(script, at)
        if tag is not None:
            end = script.find(tag.group(0), tag.end())
            if end < 0:
                raise ScriptSyntaxError(f"line {line}: the {tag.group(0)} quote opened here is never closed")
            return end + len(tag.group(0)), line + script.count("\n", at, end)
    return at + 1, line


def _comment_to_line_end(script: str, at: int, postgres: bool) -> bool:
    """``--`` (in MySQL only when a blank or the end follows) or MySQL's ``#``."""
    if script.startswith("--", at):
        return postgres or at + 2 >= len(script) or script[at + 2].isspace()
    return script[at] == "#" and not postgres


def _ident_before(script: str, at: int) -> bool:
    return at > 0 and bool(_IDENTIFIER_CHAR.match(script[at - 1]))


def _line_end(script: str, at: int) -> int:
    end = script.find("\n", at)
    return len(script) if end < 0 else end


def _block_comment_end(script: str, at: int, line: int, *, nested: bool) -> tuple[int, int]:
    depth, opened_at, at = 1, line, at + 2
    while at < len(script):
        if script.startswith("*/", at):
            depth -= 1
            at += 2
            if depth == 0:
                return at, line
            continue
        if nested and script.startswith("/*", at):
            depth += 1
            at += 2
            continue
        line += script[at] == "\n"
        at += 1
    raise ScriptSyntaxError(f"line {opened_at}: the comment opened here is never closed")


def _quoted_end(script: str, at: int, line: int, quote: str, *, backslash: bool) -> tuple[int, int]:
    opened_at, at = line, at + 1
    while at < len(script):
        char = script[at]
        if backslash and char == "\\":
            line += script[at + 1 : at + 2] == "\n"
            at += 2
            continue
        if char == quote:
            if script.startswith(quote * 2, at):  # a doubled quote is one quote character
                at += 2
                continue
            return at + 1, line
        line += char == "\n"
        at += 1
    raise ScriptSyntaxError(f"line {opened_at}: the {quote} quote opened here is never closed")


def postgres_error(fields: dict[str, str]) -> str:
    """A PostgreSQL error in words without row values: its message (``M``) and SQLSTATE (``C``); for the error
    classes whose messages can quote a value (22 data exceptions, 23 integrity violations) only the part
    before the value. The detail (``D``), which quotes rows, is never used.

    >>> postgres_error({"M": 'invalid input syntax for type integer: "ada@example.com"', "C": "22P02"})
    'invalid input syntax for type integer (SQLSTATE 22P02)'
    >>> postgres_error({"M": 'relation "customers" does not exist', "C": "42P01"})
    'relation "customers" does not exist (SQLSTATE 42P01)'
    """
    message, code = fields.get("M", "the server refused the statement"), fields.get("C", "")
    if code.startswith(_POSTGRES_VALUE_CLASSES):
        message = message.split(":", 1)[0]
    return f"{message} (SQLSTATE {code})" if code else message


def mysql_error(code: int, message: str) -> str:
    """A MySQL error in words without row values: for the errors whose messages quote a value, each quoted
    part is left out.

    >>> mysql_error(1062, "Duplicate entry 'ada@example.com' for key 'customers.email'")
    "Duplicate entry '…' for key '…' (MySQL error 1062)"
    >>> mysql_error(1146, "Table 'shop.customer' doesn't exist")
    "Table 'shop.customer' doesn't exist (MySQL error 1146)"
    """
    if code in _MYSQL_VALUE_ERRORS:
        message = re.sub(r"'(?:[^'\\]|\\.|'')*'", "'…'", message)
    return f"{message} (MySQL error {code})"
