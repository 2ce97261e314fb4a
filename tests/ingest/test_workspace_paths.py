"""Ingestion reads files inside the workspace only: no absolute or escaping globs, no symlinks out."""

from __future__ import annotations

import pytest

from cdp.config.sources import load_source
from cdp.errors import ConfigError
from cdp.ingest import ingest_source, landed_files
from tests.ingest.conftest import CSV_SOURCE, HEADER

ROW = "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n"


@pytest.mark.parametrize(
    "glob",
    ["../../../etc/pass*", "/etc/pass*", "landing/**/../../../x/*.csv", "~/x/*.csv"],
)
def test_a_landing_glob_leading_out_of_the_workspace_is_refused(env, glob):
    path = env.ws.sources_dir / "people.yml"
    path.write_text(CSV_SOURCE.replace("landing/people/*.csv", glob))
    with pytest.raises(ConfigError, match=r"people\.yml: landing: must stay inside the workspace"):
        load_source(path)


def test_a_landing_glob_with_dotdot_that_stays_inside_is_fine(env):
    path = env.ws.sources_dir / "people.yml"
    path.write_text(CSV_SOURCE.replace("landing/people/*.csv", "landing/x/../people/*.csv"))
    assert load_source(path).landing == "landing/x/../people/*.csv"


def test_a_symlink_to_a_file_outside_the_workspace_is_skipped_with_a_warning(env, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.csv"  # env's root is tmp_path
    outside.write_text(HEADER + "9,Top,Secret,top@secret.com,50,1970-01-01,2024-01-01\n")
    folder = env.ws.landing_dir / "people" / "ok"
    folder.mkdir()
    (folder / "a.csv").write_text(HEADER + ROW)
    (folder / "link.csv").symlink_to(outside)
    (env.ws.landing_dir / "people" / "dir").symlink_to(outside.parent)  # a folder leading out
    path = env.ws.sources_dir / "people.yml"
    path.write_text(CSV_SOURCE.replace("landing/people/*.csv", "landing/people/*/*.csv"))

    result = ingest_source(env.ws, env.spec("people"))
    assert result.rows_kept == 1 and result.files_loaded == 1
    skipped = [w for w in result.warnings if "leads out of the workspace" in w]
    assert sorted(w.split(":")[0] for w in skipped) == [
        "landing/people/dir/secret.csv",
        "landing/people/ok/link.csv",
    ]
    # The warning names the path in the workspace only: not the target, not its contents.
    assert not any(str(outside.parent) in w or "Secret" in w for w in result.warnings)
    assert [p.name for p in landed_files(env.ws, env.spec("people"))] == ["a.csv"]


def test_a_symlink_inside_the_workspace_still_loads(env):
    kept = env.ws.root / "archive" / "a.csv"
    kept.parent.mkdir()
    kept.write_text(HEADER + ROW)
    (env.ws.landing_dir / "people" / "a.csv").symlink_to(kept)
    result = ingest_source(env.ws, env.spec("people"))
    assert result.rows_kept == 1 and not result.warnings
