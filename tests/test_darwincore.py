"""occurrence.csv and the Darwin Core Archive, read back by a real DwC-A reader."""

from __future__ import annotations

import csv
import io

import pytest
from dwca.read import DwCAReader

from herbx.darwincore import TERMS

DWC = "http://rs.tdwg.org/dwc/terms/"


@pytest.fixture
def finished(herbx, sheets, fake):
    from herbx.fakeserver import Fault

    # The second sheet fails (no row for it); the first goes alone, so it is Malva.
    fake.script([Fault(kind="fenced"), Fault(kind="prose")])
    result = herbx("run", str(sheets), "--run-id", "d1", "--validate-after", "0")
    assert result.returncode == 0, result.stderr
    return herbx


def occurrences(herbx, *options: str) -> list[dict[str, str]]:
    text = herbx("project", "occurrence.csv", "--run", "d1", *options).stdout
    return list(csv.DictReader(io.StringIO(text)))


def test_occurrence_csv_has_one_row_per_saved_specimen_with_dwc_columns(finished):
    rows = occurrences(finished)

    assert len(rows) == 19
    assert list(rows[0])[0] == "occurrenceID"
    assert set(rows[0]) <= set(TERMS)
    assert {row["basisOfRecord"] for row in rows} == {"PreservedSpecimen"}
    ids = [row["occurrenceID"] for row in rows]
    assert len(set(ids)) == 19 and all(i.startswith("urn:sha256:") for i in ids)
    malva = next(r for r in rows if r["catalogNumber"] == "000084")
    assert malva["scientificName"] == "Malva rotundifolia L."
    assert "recordEnteredBy" not in rows[0]  # not a Darwin Core term


def test_a_confidence_threshold_blanks_the_less_certain_values(finished):
    everything = occurrences(finished)
    certain = occurrences(finished, "--min-confidence", "0.95")

    malva = next(r for r in certain if r["occurrenceID"].endswith("c84"))
    assert malva["catalogNumber"] == "000084"  # confidence 1.0
    assert "scientificName" not in malva or malva["scientificName"] == ""
    filled = sum(1 for row in everything for value in row.values() if value)
    kept = sum(1 for row in certain for value in row.values() if value)
    assert kept < filled


def test_the_archive_passes_a_darwin_core_archive_reader(finished, tmp_path):
    archive = tmp_path / "run.zip"
    finished("project", "dwca.zip", "--run", "d1", "-o", str(archive))

    with DwCAReader(str(archive)) as reader:
        assert reader.descriptor.core.type == DWC + "Occurrence"
        rows = list(reader)
        terms = {field["term"] for field in reader.descriptor.core.fields}
        assert reader.metadata is not None
    assert len(rows) == 19
    header = occurrences(finished)[0]
    assert terms == {DWC + name for name in header}
    malva = next(r for r in rows if r.data[DWC + "catalogNumber"] == "000084")
    assert malva.id.startswith("urn:sha256:000e426d")
    assert malva.data[DWC + "verbatimLocality"] == (
        "Swift Current, Research Station, Oxbow, Saskatchewan"
    )


def test_the_archive_names_the_run_model_and_prompt_in_its_metadata(finished, tmp_path):
    archive = tmp_path / "run.zip"
    finished("project", "dwca.zip", "--run", "d1", "-o", str(archive))

    import zipfile

    eml = zipfile.ZipFile(archive).read("eml.xml").decode()
    assert "d1" in eml and "openai/gpt-4o-mini" in eml and "prompt SHA-256" in eml


def test_the_archive_rebuilds_to_the_same_bytes(finished, tmp_path):
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    finished("project", "dwca.zip", "--run", "d1", "-o", str(first))
    finished("project", "dwca.zip", "--run", "d1", "-o", str(second))

    assert first.read_bytes() == second.read_bytes()
