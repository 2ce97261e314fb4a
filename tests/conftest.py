"""Shared fixtures: small generated workspaces, so tests run on real files quickly."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# dagster-dbt and the tests call `dbt`; use the one installed next to this interpreter.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def pytest_collection_modifyitems(config, items):
    """The longest files first (marker `takes`), each file's tests in their order.

    pytest-xdist (`--dist loadfile --no-loadscope-reorder`) hands out files in this
    order. Its own order, by number of tests, started the one-test end-to-end files last,
    so one worker ran them alone for minutes after the other had finished. Each worker
    starts with two files: the first two in this order go one to each, so the second
    (test_increments.py) is one that does not wait for the shared run (fixture `ran`)."""

    def takes(item) -> float:
        marker = item.get_closest_marker("takes")
        return float(marker.args[0]) if marker else 0.0

    longest: dict[Path, float] = {}
    for item in items:
        longest[item.path] = max(longest.get(item.path, 0.0), takes(item))
    first_seen = {path: i for i, path in reversed(list(enumerate(i.path for i in items)))}
    items.sort(key=lambda item: (-longest[item.path], first_seen[item.path]))


def _shared(tmp_path_factory) -> Path:
    """A folder the session's xdist workers share (their base folders' parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def parse_cache(tmp_path_factory):
    """dbt's parse kept for new workspaces (cdp.harmonise.parse_cache) in this session's
    folder, shared by the xdist workers, instead of the user's cache."""
    folder = _shared(tmp_path_factory) / "cdp-cache"
    os.environ["CDP_CACHE_DIR"] = str(folder)
    return folder


def _generate(root: Path) -> Path:
    """`cdp init` + `cdp generate` with a few hundred customers."""
    from typer.testing import CliRunner

    from cdp.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["init", str(root)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["generate", "--workspace", str(root), "--customers", "300", "--seed", "7"]
    )
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory):
    """A workspace made by `cdp init` + `cdp generate` with a few hundred customers."""
    return _generate(tmp_path_factory.mktemp("demo") / "ws")


@pytest.fixture(scope="session")
def ran(tmp_path_factory):
    """One pipeline run over a generated workspace, shared by every test that reads its
    results (pipeline, console, notebooks, SQL docs) or starts from a copy of it (the
    crash tests, the landing sensor): (workspace, outcome, steps). The run's state is
    recorded as `cdp run` records it, so a copy's next `cdp run` plans from it.

    The run is made once a session, by the first xdist worker to need it, in a folder
    the workers share (the other waits for it); each worker gets its own copy, as its
    tests run cdp and dbt in it."""
    import pickle
    import shutil

    from filelock import FileLock

    from cdp import run_plan
    from cdp.workspace import resolve_workspace
    from dagster_project.run import run_pipeline

    shared = _shared(tmp_path_factory) / "ran"
    made = shared / "outcome.pickle"
    with FileLock(f"{shared}.lock"):
        if not made.exists():
            shutil.rmtree(shared, ignore_errors=True)  # a worker failed to make it
            ws = resolve_workspace(_generate(shared / "ws"))
            steps: list[tuple[str, str]] = []
            run_plan.run_started(ws)
            outcome = run_pipeline(ws, on_step=lambda step, state: steps.append((step, state)))
            run_plan.run_finished(ws, outcome.run_id, outcome.success)
            assert outcome.success, (outcome.failed_steps, outcome.error)
            made.write_bytes(pickle.dumps((outcome, steps)))
    outcome, steps = pickle.loads(made.read_bytes())
    copy = shutil.copytree(shared / "ws", tmp_path_factory.mktemp("ran") / "ws", symlinks=True)
    return resolve_workspace(copy), outcome, steps


@pytest.fixture(scope="module")
def warm_dbt_commands():
    """Every dbt command of a module's tests (its pipeline runs in process and the dbt
    commands it runs itself) forked from one warm dbt process, as a run's commands are
    (cdp/harmonise/dbt_warm.py): each then starts without importing dbt again. Not for a
    module that kills runs: a killed run's dbt must die with its own warm process."""
    from cdp.harmonise.dbt_warm import warm_dbt

    with warm_dbt():
        yield


def make_profile_lake(root: Path):
    """A hand-made lake of three people (two Mary Joneses, one Ann Lee) and its profile
    store: cdp profile and cdp serve without running the pipeline."""
    import pyarrow as pa

    from cdp.io.atomic import write_parquet
    from cdp.serving.profile_store import build_profile_store
    from cdp.workspace import Workspace

    ws = Workspace(root)
    ws.ensure_dirs()
    ws.settings_file.write_text("default_region: US\n")
    write_parquet(
        ws.marts_dir / "customer_360.parquet",
        pa.table(
            {
                "unified_individual_id": ["U1", "U2", "U3"],
                "first_name": ["Mary", "Mary", "Ann"],
                "last_name": ["Jones", "Jones", "Lee"],
                "postal_code": ["48267", "10001", "94110"],
                "email_address": ["mary@x.com", None, "ann@x.com"],
                "phone_e164": ["+13133185461", None, "+442079460018"],
                "record_count": [2, 1, 1],
                "lifetime_value": [pa.scalar(701.08).as_py(), 0.0, 12.5],
            }
        ),
    )
    write_parquet(
        ws.marts_dir / "unified_contact_point.parquet",
        pa.table(
            {
                "unified_individual_id": ["U1", "U1", "U3", "U3"],
                "channel": ["email", "phone", "email", "phone"],
                "match_key": ["mary@x.com", "+13133185461", "ann@x.com", "+442079460018"],
                "contact_value": ["Mary@X.com", "+13133185461", "ann@x.com", "+442079460018"],
                "sources": [["crm", "shop"], ["crm"], ["crm"], ["crm"]],
                "contact_rank": [1, 1, 1, 1],
            }
        ),
    )
    write_parquet(
        ws.identity_dir / "unified_link_individual.parquet",
        pa.table(
            {
                "unified_individual_id": ["U1", "U1", "U2", "U3"],
                "source_name": ["crm", "shop", "crm", "crm"],
                "source_record_id": ["c1", "s1", "c2", "c3"],
                "record_kind": ["person"] * 4,
                "linked_by": ["rule:same_email", "rule:same_email", "singleton", "singleton"],
                "match_probability": [1.0, 1.0, None, None],
            }
        ),
    )
    write_parquet(
        ws.marts_dir / "individual_consent.parquet",
        pa.table(
            {
                "unified_individual_id": ["U1"],
                "purpose": ["marketing"],
                "channel": ["email"],
                "status": ["withdrawn"],
                "is_granted": [False],
            }
        ),
    )
    write_parquet(
        ws.marts_dir / "segment_membership.parquet",
        pa.table({"segment_name": ["high_value"], "unified_individual_id": ["U1"]}),
    )
    build_profile_store(ws)
    return ws
