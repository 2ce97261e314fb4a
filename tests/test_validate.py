"""`cdp validate` (and `cdp run` before Dagster): one line per problem, file, key, column.

Each bad declaration below passed the old load and failed inside dbt (or lost rows)
a minute into a run.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cdp.cli.main import app
from cdp.validate import validate_workspace
from cdp.workspace import Workspace

runner = CliRunner()

PEOPLE = """\
name: people
landing: landing/people/*.csv
format: csv
primary_key: id
pii: [first, last, email]
columns:
  joined: {type: date, format: "%Y-%m-%d"}
objects:
  individual: {first_name: first, last_name: last, birth_date: {column: dob, format: ["%Y-%m-%d", "%d.%m.%Y"]}}
  contact_point_email: {email_address: email}
"""

PEOPLE_ROWS = "id,first,last,email,dob,joined\n" + "".join(
    f"{i},Ann{i},Lee,a{i}@x.org,1980-01-{i:02d},2024-01-01\n" for i in range(1, 21)
)

CONSENT = """\
name: consent
landing: landing/consent/*.csv
format: csv
primary_key: id
objects:
  contact_point_consent:
    individual_id: {column: person, source: people}
    purpose: {value: marketing}
    channel: {value: email}
    status: opt_in
"""

CONSENT_ROWS = "id,person,opt_in\n" + "".join(
    f"k{i},{i},{'granted' if i % 2 else 'denied'}\n" for i in range(1, 21)
)


def _workspace(root) -> Workspace:
    ws = Workspace(root)
    ws.ensure_dirs()
    for name, yml, rows in (("people", PEOPLE, PEOPLE_ROWS), ("consent", CONSENT, CONSENT_ROWS)):
        (ws.sources_dir / f"{name}.yml").write_text(yml)
        (ws.landing_dir / name).mkdir(parents=True, exist_ok=True)
        (ws.landing_dir / name / f"{name}.csv").write_text(rows)
    return ws


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return _workspace(tmp_path / "ws")


def _lines(ws) -> list[str]:
    return [str(p) for p in validate_workspace(ws).problems]


def _edit(ws, source, old, new):
    path = ws.sources_dir / f"{source}.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_good_workspace_is_one_ok_line(ws):
    result = runner.invoke(app, ["validate", "--workspace", str(ws.root)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().startswith("OK:") and len(result.output.strip().splitlines()) == 1


def test_a_mapped_column_missing_from_the_file(ws):
    _edit(ws, "people", "last_name: last", "last_name: surname")
    assert _lines(ws) == [
        "sources/people.yml: objects.individual.last_name: column 'surname' is not in "
        "landing/people/people.csv"
    ]


def test_a_wrong_primary_key(ws):
    _edit(ws, "people", "primary_key: id", "primary_key: person_id")
    assert _lines(ws) == [
        "sources/people.yml: primary_key: column 'person_id' is not in landing/people/people.csv"
    ]


def test_a_primary_key_that_is_not_unique(ws):
    _edit(ws, "people", "primary_key: id", "primary_key: last")
    (line,) = _lines(ws)
    assert line.startswith("sources/people.yml: primary_key: 19 of 20 sampled rows")
    assert "repeat a key" in line


def test_true_false_mapped_to_consent_status(ws):
    (ws.landing_dir / "consent" / "consent.csv").write_text(
        "id,person,opt_in\n"
        + "".join(f"k{i},{i},{'true' if i % 2 else 'false'}\n" for i in range(1, 9))
    )
    (line,) = _lines(ws)
    assert line.startswith(
        "sources/consent.yml: objects.contact_point_consent.status: column opt_in in "
        "landing/consent/consent.csv has values that are not one of granted, denied, withdrawn "
        "('false', 'true'): add a value map"
    )
    # ... and with the map it is fine
    _edit(
        ws,
        "consent",
        "status: opt_in",
        'status: {column: opt_in, map: {"true": granted, "false": denied}}',
    )
    assert _lines(ws) == []


def test_a_value_map_that_misses_the_values_seen(ws):
    (ws.landing_dir / "consent" / "consent.csv").write_text(
        "id,person,opt_in\n" + "".join(f"k{i},{i},{'Y' if i % 2 else 'N'}\n" for i in range(1, 9))
    )
    _edit(ws, "consent", "status: opt_in", 'status: {column: opt_in, map: {"y": granted}}')
    assert _lines(ws) == [
        "sources/consent.yml: objects.contact_point_consent.status.map: 4 of 8 sampled values "
        "of column opt_in in landing/consent/consent.csv are not in the map ('N'): they would be null"
    ]


def test_a_date_format_that_does_not_fit(ws):
    _edit(ws, "people", '["%Y-%m-%d", "%d.%m.%Y"]', '"%d/%m/%Y"')
    assert _lines(ws) == [
        "sources/people.yml: objects.individual.birth_date: 20 of 20 sampled values of column "
        "dob in landing/people/people.csv fit none of the formats %d/%m/%Y"
    ]
    _edit(ws, "people", 'joined: {type: date, format: "%Y-%m-%d"}', "joined: integer")
    assert (
        "sources/people.yml: columns.joined: 20 of 20 sampled values in "
        "landing/people/people.csv are not a valid integer"
    ) in _lines(ws)


def test_a_web_login_source_that_declares_only_party_identifiers(ws):
    (ws.landing_dir / "logins").mkdir()
    (ws.landing_dir / "logins" / "l.csv").write_text("login_id,cookie,account\nL1,c1,1\n")
    (ws.sources_dir / "logins.yml").write_text(
        "name: logins\nlanding: landing/logins/*.csv\nformat: csv\nprimary_key: login_id\n"
        "objects:\n  party_identification:\n    - {type: cookie_id, number: cookie}\n"
        "    - {type: account_id, number: account}\n"
    )
    (line,) = _lines(ws)
    assert line.startswith(
        "sources/logins.yml: objects.party_identification: contact points and identifiers "
        "belong to the person record of each row, so this source must also map `individual`"
    )
    assert "engagement_web: {anonymous_id: <cookie column>, individual_id: {column:" in line
    # the documented form works
    (ws.sources_dir / "logins.yml").write_text(
        "name: logins\nlanding: landing/logins/*.csv\nformat: csv\nprimary_key: login_id\n"
        "objects:\n  engagement_web:\n    anonymous_id: cookie\n"
        "    individual_id: {column: account, source: people}\n    event_type: {value: login}\n"
    )
    assert _lines(ws) == []


def test_individual_id_naming_a_source_without_person_records(ws):
    _edit(ws, "consent", "source: people", "source: consent")
    (line,) = _lines(ws)
    assert line.startswith(
        "sources/consent.yml: objects.contact_point_consent.individual_id.source: consent maps "
        "no `individual`, so its rows are not person records"
    )


def test_every_problem_is_listed_not_just_the_first(ws):
    _edit(ws, "people", "last_name: last", "last_name: surname")
    _edit(ws, "consent", "primary_key: id", "primary_key: consent_id")
    (ws.root / "cdp.yml").write_text("default_region: [GB\n")
    lines = _lines(ws)
    assert len(lines) == 3
    assert lines[0].startswith("cdp.yml: invalid YAML at line 2")


def test_values_of_pii_columns_are_never_shown(ws):
    _edit(ws, "consent", "objects:", "pii: [opt_in]\nobjects:")
    (ws.landing_dir / "consent" / "consent.csv").write_text("id,person,opt_in\nk1,1,secret-value\n")
    (line,) = _lines(ws)
    assert "secret-value" not in line and "not one of granted" in line


def test_run_stops_before_dagster_with_the_problems(ws):
    _edit(ws, "people", "last_name: last", "last_name: surname")
    result = runner.invoke(app, ["run", "--workspace", str(ws.root)])
    assert result.exit_code == 1
    assert (
        "sources/people.yml: objects.individual.last_name: column 'surname' is not in "
        "landing/people/people.csv"
    ) in result.output
    assert "nothing was run" in result.output and "Traceback" not in result.output
    assert not (ws.state_dir / "dagster_home").exists()  # Dagster never started


def test_a_workspace_under_a_folder_with_a_quote_is_refused_in_one_line(tmp_path):
    """dbt's models name the lake's files in quoted SQL strings: at O'Brien's home the
    first model failed with a parser error about an unterminated comment."""
    ws = _workspace(tmp_path / "o'brien" / "ws")
    problems = _lines(ws)
    assert len(problems) == 1 and "holds a single quote" in problems[0]
    assert problems[0].startswith(str(ws.root))
    result = runner.invoke(app, ["run", "--workspace", str(ws.root)])
    assert result.exit_code == 1 and "nothing was run" in result.output
    assert "holds a single quote" in result.output and "Traceback" not in result.output
    assert not (ws.state_dir / "dagster_home").exists()


def test_a_type_declared_after_files_were_loaded_says_to_reload_them(ws):
    """Loaded files keep the types they were loaded with: validate names the column and
    what reloads them, and `--full-refresh` really does."""
    import pyarrow.parquet as pq

    from cdp.config.settings import load_settings
    from cdp.config.sources import load_source
    from cdp.ingest import ingest_source

    (ws.root / "cdp.yml").write_text("default_region: US\n")
    settings = load_settings(ws.settings_file)
    ingest_source(ws, load_source(ws.sources_dir / "people.yml"), settings)
    assert validate_workspace(ws).warnings == []
    _edit(ws, "people", "columns:\n", "columns:\n  id: integer\n")
    (warning,) = [str(w) for w in validate_workspace(ws).warnings]
    assert warning == (
        "sources/people.yml: columns.id: declared integer, but 1 earlier load(s) hold it as "
        "string: `cdp run --full-refresh` loads them again with the declared type"
    )
    ingest_source(ws, load_source(ws.sources_dir / "people.yml"), settings, full_refresh=True)
    (part,) = (ws.raw_dir / "people").glob("load_id=*/*.parquet")
    assert str(pq.read_schema(part).field("id").type) == "int64"
    assert validate_workspace(ws).warnings == []


def test_a_run_that_is_not_full_checks_only_the_files_not_loaded_yet(ws):
    """`cdp run` after loads (and the sensor) checks the new files only: the loaded ones
    passed when they were loaded, and a changed one counts as new. A mistake in a new
    file still stops the run."""
    from cdp.config.settings import load_settings
    from cdp.config.sources import load_source
    from cdp.ingest import ingest_source

    settings = load_settings(ws.settings_file)
    for name in ("people", "consent"):
        ingest_source(ws, load_source(ws.sources_dir / f"{name}.yml"), settings)
    assert validate_workspace(ws, new_files_only=True).files == 0
    (ws.landing_dir / "people" / "more.csv").write_text(
        "id,first,last,dob,joined\n21,Bo,Lee,1980-02-01,2024-01-01\n"
    )
    new = validate_workspace(ws, new_files_only=True)
    assert new.files == 1
    assert [str(p) for p in new.problems] == [
        "sources/people.yml: objects.contact_point_email.email_address: "
        "column 'email' is not in landing/people/more.csv"
    ]
    assert validate_workspace(ws).files == 3  # `cdp validate` reads every landed file
    # a loaded file written again is new again
    (ws.landing_dir / "people" / "more.csv").unlink()
    (ws.landing_dir / "consent" / "consent.csv").write_text(CONSENT_ROWS + "k21,21,granted\n")
    assert validate_workspace(ws, new_files_only=True).files == 1
