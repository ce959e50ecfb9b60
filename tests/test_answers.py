"""Recovering Darwin Core fields from what models actually say."""

from __future__ import annotations

import json

import pytest

from herbx.answers import Unparseable, covered, parse

from .conftest import RECORDED


def test_a_plain_json_answer_keeps_values_and_confidences():
    fields, note = parse(
        '{"scientificName": {"value": "Poa annua", "confidence": 0.8}}'
    )

    assert fields == {"scientificName": {"value": "Poa annua", "confidence": 0.8}}
    assert note == ""


def test_json_inside_a_code_fence_is_recovered():
    text = (
        'Here you go:\n```json\n{"country": {"value": "Canada", "confidence": 1}}\n```'
    )

    fields, note = parse(text)

    assert fields["country"]["value"] == "Canada"
    assert "fenced" in note


def test_json_surrounded_by_prose_is_recovered():
    text = 'The label reads {"recordedBy": {"value": "M. Molloy", "confidence": 0.9}}.'

    fields, note = parse(text)

    assert fields["recordedBy"]["value"] == "M. Molloy"
    assert "prose" in note


def test_plain_string_values_get_an_unknown_confidence():
    fields, _ = parse('{"catalogNumber": "000084", "eventDate": null}')

    assert fields == {
        "catalogNumber": {"value": "000084", "confidence": None},
        "eventDate": {"value": "", "confidence": None},
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I cannot read this label.", "unparseable"),
        ('{"a": {"value": "cut off', "unparseable"),
        ("[1, 2, 3]", "unparseable"),
        ("{}", "empty_record"),
    ],
)
def test_answers_without_fields_are_failures(text, reason):
    with pytest.raises(Unparseable) as caught:
        parse(text)
    assert caught.value.reason == reason


def test_every_recorded_answer_parses():
    for line in RECORDED.read_text().splitlines():
        content = json.loads(line)["response"]["choices"][0]["message"]["content"]
        fields, _ = parse(content)
        assert "scientificName" in fields


def test_coverage_counts_only_non_empty_values():
    fields = {
        "a": {"value": "x", "confidence": 1.0},
        "b": {"value": "", "confidence": 0.0},
        "c": {"value": "  ", "confidence": None},
    }

    assert covered(fields) == ["a"]


@pytest.mark.parametrize(
    "text",
    [
        '{"scientificName": {"value": "Quercus robur L.", "confidence": 0.93}, '
        '"country": {"value": "Fra',
        'Sure! {"scientificName": {"value": "Quercus robur L.", "confidence": 0.9}',
        '{"value": "Quercus robur L.", "confidence": 0.9}',
    ],
    ids=["cut off", "cut off after prose", "a lone field"],
)
def test_a_cut_off_record_is_never_recovered_from_its_inner_fields(text):
    with pytest.raises(Unparseable):
        parse(text)


def test_braces_in_prose_before_the_record_do_not_hide_it():
    text = 'Label {sic} reads: {"country": {"value": "Canada", "confidence": 1}} ok'

    fields, _ = parse(text)

    assert fields["country"]["value"] == "Canada"
