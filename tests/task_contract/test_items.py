"""Item files: JSONL, CSV, one value a line."""

from __future__ import annotations

import io

import pytest

from task_contract.items import ItemFormatError, guess_format, parse_items


def items(text: str, fmt: str, field: str = "domain") -> list[object]:
    return list(parse_items(io.StringIO(text), fmt, field))  # type: ignore[arg-type]


def test_lines_wrap_each_value_and_skip_blanks() -> None:
    assert items(" a.com \n\n\tb.org\n", "lines") == [{"domain": "a.com"}, {"domain": "b.org"}]


def test_jsonl_objects_and_scalars() -> None:
    assert items('{"domain": "a", "n": 1}\n"b"\n7\n', "jsonl", "x") == [
        {"domain": "a", "n": 1},
        {"x": "b"},
        {"x": 7},
    ]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('{"a": 1}\n{"a": \n', 2, "not valid JSON"),
        ('{"a": 1}\n\n[1, 2]\n', 3, "a JSON array is not an item"),
        ("null\n", 1, "null is not an item"),
    ],
)
def test_jsonl_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ItemFormatError) as err:
        items(text, "jsonl")
    assert err.value.line == line
    assert words in str(err.value)


def test_csv_rows_become_objects() -> None:
    text = 'domain,note\na.com,"x, y"\n,\nb.org,\n'
    assert items(text, "csv") == [
        {"domain": "a.com", "note": "x, y"},
        {"domain": "b.org", "note": ""},
    ]


def test_csv_with_too_many_values_names_the_line() -> None:
    with pytest.raises(ItemFormatError) as err:
        items("domain\na.com\nb.org,extra\n", "csv")
    assert err.value.line == 3


def test_format_from_extension() -> None:
    assert [guess_format(n) for n in ("a.jsonl", "b.CSV", "c.txt", "d")] == [
        "jsonl",
        "csv",
        "lines",
        "lines",
    ]
