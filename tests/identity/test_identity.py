"""Identity resolution on hand-made records with known answers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cdp.errors import CdpError
from cdp.identity.cluster import Edge, GuardedClusterer
from cdp.identity.resolve import resolve
from cdp.identity.settings import IdentitySettings
from cdp.identity.stable_ids import assign_ids
from tests.identity.conftest import PEOPLE, rec, write_inputs


def _clusters(ws) -> dict[str, str]:
    t = pq.read_table(ws.identity_dir / "unified_link_individual.parquet").to_pylist()
    return {f"{r['source_name']}:{r['source_record_id']}": r["unified_individual_id"] for r in t}


def test_people_resolve_and_households_stay_apart(ws):
    write_inputs(ws, PEOPLE, logins=[("k1", "shop:a1")])
    result = resolve(ws, run_id="r1")
    c = _clusters(ws)
    assert c["crm:c1"] == c["shop:a1"] == c["news:s1"]  # one Ann Lee in three systems
    assert len({c["crm:c2"], c["crm:c3"], c["shop:a3"]}) == 3  # the Novak household: three people
    assert c["anonymous_visitor:k1"] == c["crm:c1"]  # the cookie that logged in as Ann
    assert any("too few to train" in w for w in result.warnings)  # tiny: documented defaults


def test_deterministic_stitching_on_a_shared_loyalty_id(ws):
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    c = _clusters(ws)
    assert c["crm:c4"] == c["shop:a4"]  # Bob / Robert Stone: different emails, one loyalty id
    links = {
        (r["source_name"], r["source_record_id"]): r
        for r in pq.read_table(ws.identity_dir / "unified_link_individual.parquet").to_pylist()
    }
    assert links[("crm", "c4")]["linked_by"] == "rule:same_party_identifier"


def test_identifier_shared_by_too_many_records_is_ignored_and_reported(ws):
    people = [
        rec("crm", f"d{i}", n, "Doe", f"19{60 + i}-01-01", loyalty="0000")
        for i, n in enumerate(["Al", "Bea", "Cal", "Dee", "Eli", "Fay", "Gus"])
    ]
    write_inputs(ws, people)
    result = resolve(ws, run_id="r1", settings=IdentitySettings(max_identifier_records=5))
    assert result.ignored_identifiers == [("loyalty_id", 1)]
    assert len(set(_clusters(ws).values())) == 7


def test_exploding_blocking_rule_is_refused_with_a_clear_message(ws):
    people = [
        rec("crm", f"p{i}", f"N{i}", f"S{i}", street=f"{i} main st", zip="99999") for i in range(40)
    ]
    write_inputs(ws, people)
    settings = IdentitySettings(blocking_rules=[["postal_code"]], max_comparisons_per_rule=100)
    with pytest.raises(
        CdpError, match=r"blocking rule \[postal_code\] would generate 780 comparisons"
    ):
        resolve(ws, run_id="r1", settings=settings)


def test_chain_of_weak_links_does_not_build_a_giant_cluster():
    # 0-1-2-3-4-5: each neighbour pair looks alike, but every record has its own birth date.
    dates = ["1980-01-01", "1985-06-15", "1990-11-30", "1995-03-03", "2000-08-08", "1970-12-12"]
    c = GuardedClusterer(
        6,
        dates,
        [None] * 6,
        {},
        max_size=30,
        min_cross_edges=2,
        strong_threshold=0.9999,
        date_conflict_edits=2,
    )
    c.add_probabilistic(range(5), range(1, 6), [0.97] * 5)
    assert max(len(m) for m in c.clusters().values()) == 1
    assert {why for _, why in c.refused} == {"different birth dates"}


def test_two_groups_need_more_than_one_weak_link():
    def clusterer():
        return GuardedClusterer(
            4,
            [None] * 4,
            [None] * 4,
            {},
            max_size=30,
            min_cross_edges=2,
            strong_threshold=0.9999,
            date_conflict_edits=2,
        )

    one_link = clusterer()  # pairs 0-1 and 2-3 strong, then one weak link 1-2
    one_link.add_probabilistic([0, 2, 1], [1, 3, 2], [0.999, 0.999, 0.6])
    assert sorted(len(m) for m in one_link.clusters().values()) == [2, 2]
    two_links = clusterer()  # a second, independent link between the groups: now they join
    two_links.add_probabilistic([0, 2, 1, 0], [1, 3, 2, 3], [0.999, 0.999, 0.6, 0.7])
    assert sorted(len(m) for m in two_links.clusters().values()) == [4]


def test_size_cap_holds():
    c = GuardedClusterer(
        5,
        [None] * 5,
        [None] * 5,
        {},
        max_size=3,
        min_cross_edges=1,
        strong_threshold=0.9999,
        date_conflict_edits=2,
    )
    c.add_deterministic([Edge(0, i, 1.0, "deterministic:x") for i in range(1, 5)])
    assert max(len(m) for m in c.clusters().values()) == 3


def test_stable_ids_rerun_merge_split():
    prev = {"a": "U1", "b": "U1", "c": "U2", "d": "U3", "e": "U3", "f": "U3"}
    sizes, order = {"U1": 2, "U2": 1, "U3": 3}, {"U1": 0, "U2": 1, "U3": 2}
    # Rerun with the same clusters: same ids, no events.
    ids, events = assign_ids([["a", "b"], ["c"], ["d", "e", "f"]], prev, sizes, order)
    assert ids == ["U1", "U2", "U3"] and events == []
    # U1 and U2 merge: the larger U1 survives. U3 splits: its largest part keeps U3.
    ids, events = assign_ids([["a", "b", "c"], ["d", "e"], ["f"], ["new"]], prev, sizes, order)
    assert ids[0] == "U1" and ids[1] == "U3"
    assert ids[2] not in {"U1", "U2", "U3"} and ids[3] not in {"U1", "U2", "U3"}
    kinds = {(e.event, e.unified_individual_id, e.related_id) for e in events}
    assert ("merged", "U1", "U2") in kinds
    assert ("split", "U3", ids[2]) in kinds
    assert ("created", ids[3], None) in kinds
    # New ids are derived from the data: the same again gives the same ids.
    assert assign_ids([["a", "b", "c"], ["d", "e"], ["f"], ["new"]], prev, sizes, order)[0] == ids


def test_ids_survive_reruns_and_new_records_join_existing_people(ws):
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    first = _clusters(ws)
    resolve(ws, run_id="r2")
    assert _clusters(ws) == first
    write_inputs(
        ws,
        [
            *PEOPLE,
            rec(
                "news",
                "s9",
                "Jana",
                "Novak",
                "1972-03-03",
                "jana.novak@x.com",
                "+14155550199",
                "9 elm rd",
                "10001",
            ),
        ],
    )
    resolve(ws, run_id="r3")
    after = _clusters(ws)
    assert {k: v for k, v in after.items() if k in first} == first
    history = pq.read_table(ws.identity_dir / "identity_history.parquet").to_pylist()
    assert {h["run_id"] for h in history} == {"r1"}  # r2 and r3 merged and split nothing


def test_explain_shows_evidence_and_near_misses(ws):
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    from cdp.cli.main import app

    ann = _clusters(ws)["crm:c1"]
    out = CliRunner().invoke(app, ["explain", ann, "--workspace", str(ws.root)], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "crm:c1" in out.output and "shop:a1" in out.output
    assert "email_key" in out.output and "+" in out.output  # per-comparison weights
    novak = _clusters(ws)["crm:c2"]
    out = CliRunner().invoke(
        app, ["explain", novak, "--workspace", str(ws.root)], terminal_width=200
    )
    assert "kept apart" in out.output or "Near misses" in out.output
    missing = CliRunner().invoke(app, ["explain", "UI-NOPE", "--workspace", str(ws.root)])
    assert missing.exit_code == 1 and "no unified individual" in missing.output


def test_first_names_are_compatible_only_when_directly_related():
    from cdp.harmonise.normalise import name_variants
    from cdp.identity.cluster import name_sets_compatible, names_compatible

    def n(name: str) -> tuple[str, ...]:
        return (name, *name_variants(name))

    assert names_compatible(n("bob"), n("robert"))  # a nickname
    assert names_compatible(n("robert"), n("robret"))  # a transposition
    assert names_compatible(n("christopher"), n("christlpher"))  # a typo
    assert names_compatible(n("j"), n("john"))  # an initial
    assert names_compatible(n("imckey"), n("michael"))  # Mickey, misspelt
    # The name list relates both Robert and William to Bill: father and son stay apart.
    assert not names_compatible(n("robert"), n("william"))
    assert not names_compatible(n("patricia"), n("patrick"))  # two edits: two people
    assert not names_compatible(n("ryan"), n("bryant"))
    # A group holding Christopher and Chris still takes a misspelt Christopher.
    assert name_sets_compatible({n("christopher"), n("chris")}, {n("christlpher")})
    assert not name_sets_compatible({n("robert"), n("bob")}, {n("william")})


def _scored(**mw) -> pa.Table:
    n = len(next(iter(mw.values())))
    return pa.table({"match_probability": [0.999] * n, **{f"mw_{k}": v for k, v in mw.items()}})


def test_household_pairs_are_rescored_on_personal_details_alone():
    from cdp.identity.scoring import household_rescore

    settings = IdentitySettings(household_prior=0.3)
    scored = _scored(
        first_name_key=[6.0, 6.0, 6.0],
        last_name_key=[7.0, 7.0, -3.0],  # the third pair has another surname
        address_line1_key=[15.0, 15.0, 15.0],
        email_key=[-3.0, 13.0, -3.0],  # the second pair shares a personal email
        phone=[-3.0, 0.0, -3.0],
        birth_date=[0.0, 0.0, 0.0],
    )
    p, household, share = household_rescore(scored, settings)
    assert share == 0.5  # two household pairs are too few to learn the share from
    assert household.tolist() == [True, True, False]
    # Same name, same home, other email and phone: two people (log2 odds 6-3-3-1.2 < 0).
    assert p[0] < 0.5
    assert p[1] == pytest.approx(0.999)  # the shared personal email carries it
    assert p[2] == pytest.approx(0.999)  # not one household: Splink's score stands


def test_household_comparisons_must_be_comparisons():
    with pytest.raises(CdpError, match="household_comparisons names"):
        IdentitySettings.from_dict({"household_comparisons": ["house_number"]})
    # Left at its default, the list follows the comparisons a user keeps.
    own = IdentitySettings.from_dict({"comparisons": [{"column": "email_key", "kind": "email"}]})
    assert own.household_comparisons == []


def test_training_sample_is_uniform_and_repeatable():
    from cdp.identity.model import training_sample

    records = pa.table({"unique_id": [f"r{i:05d}" for i in range(20_000)]})
    settings = IdentitySettings(training_sample_records=5_000)
    a, b = training_sample(records, settings), training_sample(records, settings)
    assert a.num_rows == 5_000 and a.equals(b)
    ids = [int(u[1:]) for u in a["unique_id"].to_pylist()]
    assert ids == sorted(ids) and 8_000 < sum(ids) / len(ids) < 12_000  # spread, not a prefix
    small = IdentitySettings(training_sample_records=50_000)
    assert training_sample(records, small) is records


def test_levels_unseen_in_training_keep_a_small_m():
    from cdp.identity.model import M_FLOOR, floor_m

    model = {
        "comparisons": [
            {
                "comparison_levels": [
                    {"is_null_level": True},
                    {"m_probability": 0.0},
                    {"m_probability": 0.9},
                ]
            }
        ]
    }
    levels = floor_m(model)["comparisons"][0]["comparison_levels"]
    assert levels[1]["m_probability"] == M_FLOOR and levels[2]["m_probability"] == 0.9
    assert "m_probability" not in levels[0]


def test_a_model_trained_on_other_comparisons_is_retrained(ws):
    import json

    from cdp.identity.model import splink_settings
    from cdp.identity.scoring import model_matches

    settings = IdentitySettings()
    model = splink_settings(settings).create_settings_dict("duckdb")
    ws.identity_model_file.parent.mkdir(parents=True, exist_ok=True)
    ws.identity_model_file.write_text(json.dumps(model))
    assert model_matches(ws, settings)
    other = IdentitySettings.from_dict(
        {"comparisons": [{"column": "email_key", "kind": "exact"}], "household_comparisons": []}
    )
    assert not model_matches(ws, other)


def test_swapped_first_and_last_name_is_one_person_but_a_household_is_not():
    from cdp.harmonise.normalise import name_variants

    def clusterer(first, last):
        return GuardedClusterer(
            len(first),
            [None] * len(first),
            [(f, *name_variants(f)) for f in first],
            {},
            max_size=30,
            min_cross_edges=2,
            strong_threshold=0.9999,
            date_conflict_edits=2,
            last_names=[(x,) for x in last],
        )

    swapped = clusterer(["jacob", "hassall"], ["hassall", "jacob"])
    swapped.add_probabilistic([0], [1], [0.99])
    assert len(swapped.clusters()) == 1
    household = clusterer(["mary", "john"], ["smith", "smith"])
    household.add_probabilistic([0], [1], [0.99])
    assert len(household.clusters()) == 2
    assert household.refused[0][1] == "different first names"


def test_household_prior_is_learnt_from_the_pairs():
    from cdp.identity.scoring import estimate_household_prior

    rng = np.random.default_rng(0)
    # 30% of household pairs are one person (strong personal evidence), 70% are not.
    one = rng.normal(8, 2, 300)
    two = rng.normal(-8, 2, 700)
    assert estimate_household_prior(np.concatenate([one, two])) == pytest.approx(0.3, abs=0.03)
    # Repeated records and no families: nearly every shared home is one person.
    assert estimate_household_prior(rng.normal(8, 2, 500)) > 0.9
    assert estimate_household_prior(np.array([5.0])) == 0.5  # too few to learn from
    assert IdentitySettings.from_dict({"household_prior": "auto"}).household_prior == "auto"
    with pytest.raises(CdpError, match="household_prior"):
        IdentitySettings.from_dict({"household_prior": 1.5})


def test_family_guards_follow_the_data_unless_set():
    import importlib

    resolve_module = importlib.import_module("cdp.identity.resolve")
    guard = resolve_module._family_guards
    auto = IdentitySettings()
    assert guard(auto, 0.6)  # families in the data: unrelated first names stay apart
    assert not guard(auto, 0.95)  # repeated records, no families: a name is an error
    assert guard(auto, None)
    assert guard(IdentitySettings(family_guards=True), 0.95)
    assert not guard(IdentitySettings(family_guards=False), 0.1)


def test_the_documented_example_is_the_defaults():
    import yaml

    from cdp.identity.settings import EXAMPLE_YAML

    example = IdentitySettings.from_dict(yaml.safe_load(EXAMPLE_YAML)["identity"])
    assert example.model_dump() == IdentitySettings().model_dump()


def test_the_settings_in_docs_are_the_defaults():
    import re
    from pathlib import Path

    import yaml

    doc = (Path(__file__).parents[2] / "docs" / "identity.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(identity:.*?)```", doc, re.S).group(1)
    documented = IdentitySettings.from_dict(yaml.safe_load(block)["identity"])
    assert documented.model_dump() == IdentitySettings().model_dump()


def test_national_ids_are_compared_not_joined_on(ws):
    from cdp.identity.prepare import build_records, connect_inputs

    people = [
        rec("crm", "n1", "Ana", "Ruiz", "1980-01-01", loyalty="L1") | {"national_id": "123456789"},
        rec("shop", "n2", "Ana", "Ruiz") | {"national_id": "123456798"},  # a transposition
    ]
    write_inputs(ws, people)
    records = build_records(connect_inputs(ws))
    ids = zip(records["unique_id"].to_pylist(), records["national_id"].to_pylist(), strict=True)
    assert dict(ids) == {
        "crm:n1": "123456789",
        "shop:n2": "123456798",
    }
    resolve(ws, run_id="r1")
    # No strong identifier in common, yet the names and the near-identical id join them.
    c = _clusters(ws)
    assert c["crm:n1"] == c["shop:n2"]
    # The same names with two unrelated national ids: two people.
    people[1]["national_id"] = "987001234"
    write_inputs(ws, people)
    resolve(ws, run_id="r2")
    c = _clusters(ws)
    assert c["crm:n1"] != c["shop:n2"]


def test_a_run_killed_while_writing_its_outputs_writes_each_history_event_once(ws, monkeypatch):
    import cdp.identity.outputs as outputs

    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    before = pq.read_table(ws.identity_dir / "identity_history.parquet").num_rows
    # r2 adds a person, and is killed after writing its events aside, before its links.
    write_inputs(ws, [*PEOPLE, rec("crm", "c9", "Zed", "Quinn", "1999-09-09", "zq@x.com")])
    real = outputs.write_parquet

    def killed(path, table, **kw):
        if path.name == "unified_link_individual.parquet":
            raise KeyboardInterrupt("killed")
        return real(path, table, **kw)

    monkeypatch.setattr(outputs, "write_parquet", killed)
    with pytest.raises(KeyboardInterrupt):
        resolve(ws, run_id="r2")
    monkeypatch.setattr(outputs, "write_parquet", real)
    assert (ws.identity_dir / "identity_history.pending.parquet").exists()
    resolve(ws, run_id="r3")  # the rerun: r2's links never landed, so r3 records the change
    history = pq.read_table(ws.identity_dir / "identity_history.parquet").to_pylist()
    assert {h["run_id"] for h in history[before:]} == {"r3"}
    assert [h["event"] for h in history[before:]] == ["created"]
    assert not (ws.identity_dir / "identity_history.pending.parquet").exists()
    # Killed after its links but before the history: the next run files the events.
    write_inputs(ws, [*PEOPLE, rec("crm", "c9", "Zed", "Quinn", "1999-09-09", "zq@x.com"),
                      rec("crm", "c8", "Yan", "Poe", "1988-08-08", "yp@x.com")])  # fmt: skip
    monkeypatch.setattr(
        outputs, "append_history", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        resolve(ws, run_id="r4")
    monkeypatch.undo()
    resolve(ws, run_id="r5")
    runs = [
        h["run_id"] for h in pq.read_table(ws.identity_dir / "identity_history.parquet").to_pylist()
    ]
    assert runs.count("r4") == 1 and "r5" not in runs
