"""Identity resolution redoes only what changed, and agrees with a full run."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cdp.identity import incremental
from cdp.identity.resolve import resolve
from cdp.identity.settings import IdentitySettings
from cdp.workspace import Workspace
from tests.identity.conftest import PEOPLE, rec, write_inputs

EXTRA = [
    rec("shop", "a9", "Ann", "Lee", "1980-05-01", "ann.lee1@x.com"),  # joins Ann
    rec("crm", "c9", "Zed", "Quinn", "1999-09-09", "zq@x.com", None, "7 ash ct", "30301"),
]


def _clusters(ws) -> dict[str, str]:
    t = pq.read_table(ws.identity_dir / "unified_link_individual.parquet").to_pylist()
    return {f"{r['source_name']}:{r['source_record_id']}": r["unified_individual_id"] for r in t}


def _partition(clusters: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for record, uid in clusters.items():
        groups.setdefault(uid, set()).add(record)
    return {frozenset(g) for g in groups.values()}


def test_nothing_changed_keeps_every_cluster_and_links_new_cookies(ws):
    write_inputs(ws, PEOPLE)
    assert resolve(ws, run_id="r1").mode == "full"
    before = pq.read_table(ws.identity_dir / "identity_clusters.parquet")
    write_inputs(ws, PEOPLE, logins=[("k1", "crm:c4")])  # a new login, no new person record
    result = resolve(ws, run_id="r2")
    assert result.mode == "unchanged"
    c = _clusters(ws)
    assert c["anonymous_visitor:k1"] == c["crm:c4"]
    assert pq.read_table(ws.identity_dir / "identity_clusters.parquet").equals(before)


def test_new_records_are_resolved_alone_and_agree_with_a_full_run(ws, tmp_path):
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    first = _clusters(ws)
    write_inputs(ws, [*PEOPLE, *EXTRA])
    result = resolve(ws, run_id="r2")
    assert result.mode == "incremental"
    after = _clusters(ws)
    assert {k: v for k, v in after.items() if k in first} == first  # every id kept
    assert after["shop:a9"] == after["crm:c1"]
    assert after["crm:c9"] not in first.values()
    history = pq.read_table(ws.identity_dir / "identity_history.parquet").to_pylist()
    assert [h["event"] for h in history if h["run_id"] == "r2"] == ["created"]
    # A fresh, full resolution of the same records makes the same people.
    fresh = Workspace(tmp_path / "fresh")
    write_inputs(fresh, [*PEOPLE, *EXTRA])
    assert resolve(fresh, run_id="f1").mode == "full"
    assert _partition(_clusters(fresh)) == _partition(after)


def test_a_new_cluster_never_takes_an_id_a_cluster_outside_the_part_holds(ws):
    """A new cluster's id comes from its smallest record. Quinn Moss's cluster got its id
    from zz:q1; q1 left, the id stayed with zz:q2. A new zz:q1, somebody else, must not
    take that id, though the increment does not touch Quinn Moss's cluster."""
    from cdp.identity.stable_ids import id_stem

    quinn = [
        rec("zz", "q1", "Quinn", "Moss", "1961-02-03", "qm@moss.org", None, "3 fir ln", "73301"),
        rec("zz", "q2", "Quinn", "Moss", "1961-02-03", "qm@moss.org", None, "3 fir ln", "73301"),
    ]
    write_inputs(ws, [*PEOPLE, *quinn])
    resolve(ws, run_id="r1")
    held = _clusters(ws)["zz:q2"]
    assert held == id_stem("zz:q1")
    write_inputs(ws, [*PEOPLE, quinn[1]])
    assert resolve(ws, run_id="r2").mode == "incremental"
    other = rec("zz", "q1", "Ida", "Welk", "2003-12-12", "ida@welk.net", None, "8 bay rd", "99501")
    write_inputs(ws, [*PEOPLE, quinn[1], other])
    result = resolve(ws, run_id="r3")
    assert result.mode == "incremental", result.mode_reason
    after = _clusters(ws)
    assert after["zz:q2"] == held
    assert after["zz:q1"] == id_stem("zz:q1") + "1"


def test_a_second_increment_is_incremental_too(ws):
    """An incremental run fixes the household prior to the share learnt by the last full
    run; the state it saves must still say the settings as written, or every run after an
    increment resolved everything again (at a million records, 350 s instead of 200)."""
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    write_inputs(ws, [*PEOPLE, EXTRA[0]])
    assert resolve(ws, run_id="r2").mode == "incremental"
    write_inputs(ws, [*PEOPLE, *EXTRA])
    result = resolve(ws, run_id="r3")
    assert result.mode == "incremental", result.mode_reason


def _scored(ws) -> dict[tuple[str, str], float]:
    t = pq.read_table(ws.identity_dir / "identity_scored_pairs.parquet").to_pylist()
    return {(r["unique_id_l"], r["unique_id_r"]): r["match_probability"] for r in t}


MORE = [*PEOPLE, rec("shop", "a5", "Peter", "Novak", "1970-01-01", None, None, "9 elm rd", "10001")]


def test_an_increment_scores_only_the_pairs_with_a_new_record(ws, tmp_path, monkeypatch):
    """The part around a new record is clustered again, but Splink scores only the pairs
    with the new record (or a record sharing its email or phone); the part's other pairs
    are read back from the run before, and every pair is what a full run finds."""

    monkeypatch.setattr(incremental, "REUSE_MAX_SHARE", 0.2)  # one new record of nine
    more = MORE
    fresh = Workspace(tmp_path / "fresh")
    write_inputs(fresh, more)
    full = resolve(fresh, run_id="f1")
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    write_inputs(ws, more)
    result = resolve(ws, run_id="r2")
    assert result.mode == "incremental"
    # The three Novaks share a home with the new record: all four are in the part, and
    # of their six pairs on the address only the new record's three are scored again.
    assert full.blocking_comparisons["address_line1_key & postal_code"] == 5 + 3
    assert result.blocking_comparisons["address_line1_key & postal_code"] == 3
    assert _partition(_clusters(ws)) == _partition(_clusters(fresh))
    now, whole = _scored(ws), _scored(fresh)
    assert now.keys() == whole.keys()
    assert any("shop:a5" in pair for pair in now)
    for pair, p in whole.items():
        assert abs(now[pair] - p) < 0.05, pair


def test_an_increment_clusters_again_only_what_a_new_record_can_link(ws, tmp_path, monkeypatch):
    """Another Ann Lee, born decades apart and living elsewhere, shares the name key with
    the new Ann Lee, so their pair is scored; it falls below the near-miss threshold, and
    her cluster is left as it was (its rows keep the first run's id), while Ann's is
    clustered again. The people are those of a full run."""

    monkeypatch.setattr(incremental, "REUSE_MAX_SHARE", 0.2)
    other = rec("crm", "c8", "Ann", "Lee", "1931-02-02", "al31@y.com", None, "4 bay rd", "02134")
    new = rec("shop", "a7", "Ann", "Lee", "1980-05-01", "ann.lee1@x.com", None, "1 oak st", "94110")
    write_inputs(ws, [*PEOPLE, other])
    resolve(ws, run_id="r1")
    write_inputs(ws, [*PEOPLE, other, new])
    result = resolve(ws, run_id="r2")
    assert result.mode == "incremental"
    assert result.blocking_comparisons["first_name_key & last_name_key"] >= 3  # c8 among them
    assert ("crm:c8", "shop:a7") not in _scored(ws)  # below the near-miss threshold
    run = {
        f"{r['source_name']}:{r['source_record_id']}": r["run_id"]
        for r in pq.read_table(ws.identity_dir / "unified_link_individual.parquet").to_pylist()
    }
    assert run["crm:c8"] == run["crm:c4"] == "r1"  # not clustered again
    assert run["shop:a7"] == run["crm:c1"] == run["news:s1"] == "r2"
    fresh = Workspace(tmp_path / "fresh")
    write_inputs(fresh, [*PEOPLE, other, new])
    resolve(fresh, run_id="f1")
    assert _partition(_clusters(ws)) == _partition(_clusters(fresh))


def test_many_new_records_have_their_part_scored_whole(ws):
    """Pairs read back keep the term frequencies of the run that scored them: past
    REUSE_MAX_SHARE new records (one of nine here), the part is scored again whole."""
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    write_inputs(ws, MORE)
    result = resolve(ws, run_id="r2")
    assert result.mode == "incremental"
    assert result.blocking_comparisons["address_line1_key & postal_code"] == 6  # four Novaks


def test_a_full_refresh_resolves_everything_again(ws):
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    write_inputs(ws, [*PEOPLE, *EXTRA])
    first = _clusters(ws)
    result = resolve(ws, run_id="r2", full=True)
    assert (result.mode, result.mode_reason) == ("full", "a full refresh")
    assert {k: v for k, v in _clusters(ws).items() if k in first} == first  # ids kept


def test_a_removed_record_leaves_its_person(ws):
    write_inputs(ws, [*PEOPLE, *EXTRA])
    resolve(ws, run_id="r1")
    write_inputs(ws, [*PEOPLE, EXTRA[1]])  # shop:a9 was deleted at its source
    result = resolve(ws, run_id="r2")
    assert result.mode == "incremental"
    assert "shop:a9" not in _clusters(ws)


def test_changed_settings_resolve_everything_again(ws):
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    result = resolve(ws, run_id="r2", settings=IdentitySettings(match_threshold=0.9))
    assert result.mode == "full"


def test_hashes_of_an_older_version_resolve_everything_again(ws):
    """Records hashed as md5 text (before the hash became a bigint made in dbt) cannot
    be compared with today's: the run after the upgrade resolves them all."""
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    path = ws.identity_dir / incremental.HASHES
    hashes = pq.read_table(path)
    older = hashes.set_column(1, "row_hash", pc.cast(hashes["row_hash"], pa.string()))
    pq.write_table(older, path)
    result = resolve(ws, run_id="r2")
    assert (result.mode, result.mode_reason) == (
        "full",
        "the earlier resolution hashed its records another way (an older version)",
    )
    assert pq.read_schema(path).field("row_hash").type == pa.int64()
    assert resolve(ws, run_id="r3").mode == "unchanged"


def test_an_edited_record_is_resolved_again(ws):
    write_inputs(ws, PEOPLE)
    resolve(ws, run_id="r1")
    edited = [dict(p) for p in PEOPLE]
    edited[2]["email"] = "someone.else@x.com"  # Ann's newsletter signup changes address
    write_inputs(ws, edited)
    result = resolve(ws, run_id="r2")
    assert result.mode == "incremental"
    c = _clusters(ws)
    assert c["news:s1"] != c["crm:c1"]  # nothing links it to Ann any more
    shutil.rmtree(ws.root)


def test_a_list_in_another_order_is_not_a_change():
    """A record's identifiers (or emails, phones) listed in another order is the same
    record: otherwise every multi-identifier record looked changed on every run."""
    import pyarrow as pa

    from cdp.identity.incremental import record_hashes

    ident = pa.struct([("type", pa.string()), ("value", pa.string())])
    a, b = {"type": "loyalty", "value": "L1"}, {"type": "national_id", "value": "N1"}

    def table(identifiers, emails):
        return pa.table(
            {
                "unique_id": ["crm:1"],
                "first_name_key": ["ann"],
                "identifiers": pa.array([identifiers], pa.list_(ident)),
                "emails": pa.array([emails], pa.list_(pa.string())),
            }
        )

    one = record_hashes(table([a, b], ["a@x.com", "b@x.com"]))
    other = record_hashes(table([b, a], ["b@x.com", "a@x.com"]))
    assert one["row_hash"].to_pylist() == other["row_hash"].to_pylist()
    changed = record_hashes(table([a], ["a@x.com", "b@x.com"]))
    assert changed["row_hash"].to_pylist() != one["row_hash"].to_pylist()


def test_the_pairs_kept_for_the_next_run():
    """After an increment the store keeps an earlier pair unless a record of it is gone,
    new or edited, or both records are in the part (whose pairs are written anew): a
    part record's pair with a record outside the part is still true, and stays."""
    import pyarrow as pa

    from cdp.identity.pair_store import carried

    earlier = pa.table(
        {
            "unique_id_l": ["a", "a", "b", "c", "d", "e"],
            "unique_id_r": ["b", "x", "y", "z", "gone", "f"],
            "match_probability": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        }
    )
    ids = lambda *v: pa.array(v, pa.string())  # noqa: E731
    kept = carried(
        earlier,
        removed=ids("d", "gone"),
        part=ids("a", "b", "c"),
        changed=ids("c"),  # edited: its earlier pairs are stale
    )
    pairs = list(zip(kept["unique_id_l"].to_pylist(), kept["unique_id_r"].to_pylist(), strict=True))
    assert pairs == [("a", "x"), ("b", "y"), ("e", "f")]


def test_earlier_near_misses_across_the_redone_part_stay_with_its_new_clusters(tmp_path):
    """A near miss from a redone record to one outside the part was not scored again: it
    stays, naming the redone record's cluster as it is now. Those inside the part are
    written anew, and those of a new, edited or removed record go."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cdp.identity.resolve import _kept_rows, _straddling

    near = pa.table(
        {
            "unique_id_l": ["a", "a", "x", "n"],
            "unique_id_r": ["b", "x", "y", "x"],
            "cluster_l": ["U1", "U1", "U5", "U9"],
            "cluster_r": ["U2", "U5", "U6", "U5"],
            "match_probability": [0.5, 0.4, 0.3, 0.2],
        }
    )
    pq.write_table(near, tmp_path / "near.parquet")
    earlier = _kept_rows(tmp_path / "near.parquet", "pair", {"n"})  # the file, but n's
    kept = _straddling(earlier, pa.array(["a", "b", "n"]), pa.array(["U7", "U2", "U9"]))
    assert kept.select(["unique_id_l", "unique_id_r", "cluster_l", "cluster_r"]).to_pylist() == [
        {"unique_id_l": "a", "unique_id_r": "x", "cluster_l": "U7", "cluster_r": "U5"},
        {"unique_id_l": "x", "unique_id_r": "y", "cluster_l": "U5", "cluster_r": "U6"},
    ]


def _against_a_full_run(ws, tmp_path, before, after, settings=None):
    """Resolve `before`, then `after` as an increment, and `after` afresh in another
    workspace: the clusters of the first run, of the increment and of the fresh run."""
    write_inputs(ws, before)
    resolve(ws, run_id="r1", settings=settings)
    first = _clusters(ws)
    write_inputs(ws, after)
    result = resolve(ws, run_id="r2", settings=settings)
    assert result.mode == "incremental", result.mode_reason
    fresh = Workspace(tmp_path / "fresh")
    write_inputs(fresh, after)
    resolve(fresh, run_id="f1", settings=settings)
    # the pairs each blocking rule forms, kept up to date from the changed blocks alone
    assert _blocking_state(ws) == _blocking_state(fresh)
    return first, _clusters(ws), _clusters(fresh)


def _blocking_state(ws) -> tuple[list[int], list[int]]:
    state = incremental.read_state(ws)
    return state["caps"], state["totals"]


# A family mailbox: a father and two records of his daughter (her married name in the
# shop). Held by different people, it is no one's evidence, and no rule links on it.
FAMILY = [
    rec("crm", "c5", "Mark", "Hill", "1960-02-02", "hills@x.com", None, "3 fir ln", "73301"),
    rec("crm", "c6", "Lucy", "Hill", "1990-06-06", "hills@x.com", None, "8 bay st", "33101"),
    rec("shop", "a6", "Lucy", "Moss", None, "hills@x.com", None, None, None),
]
OWN_EMAIL = [dict(FAMILY[0], email="mark.hill@x.com"), *FAMILY[1:]]


# An increment scores the part whole when the changed records are over REUSE_MAX_SHARE
# of all (-1: always), and reads pairs back below it: both must agree with a full run.
REUSE = pytest.mark.parametrize("reuse", [-1.0, 0.2], ids=["part scored whole", "pairs reused"])


@REUSE
@pytest.mark.parametrize(
    "after", [OWN_EMAIL, FAMILY[1:]], ids=["the father's email edited", "his record removed"]
)
def test_a_mailbox_no_longer_shared_links_its_other_holders_as_a_full_run(
    ws, tmp_path, monkeypatch, after, reuse
):
    """Once the father's record no longer holds the mailbox, it is the daughter's alone and
    links her two records, as a full run of the same records does. What finds her records
    is the edited (or removed) record's old email: they share nothing with its new values
    and were never in its cluster."""

    monkeypatch.setattr(incremental, "REUSE_MAX_SHARE", reuse)
    first, now, whole = _against_a_full_run(ws, tmp_path, [*PEOPLE, *FAMILY], [*PEOPLE, *after])
    assert first["crm:c6"] != first["shop:a6"]
    assert whole["crm:c6"] == whole["shop:a6"]
    assert _partition(now) == _partition(whole)


def test_an_edit_scores_only_the_pairs_it_can_change(ws, tmp_path, monkeypatch):
    """An edited record is fresh like a new one: Splink scores its pairs and those of the
    records holding an email or phone it gained or lost (here its old and new phone,
    which no one else holds), and reads the part's other pairs back. Before, an edit had
    the whole part scored again."""

    monkeypatch.setattr(incremental, "REUSE_MAX_SHARE", 0.2)  # one edited record of eleven
    write_inputs(ws, [*PEOPLE, *FAMILY])
    resolve(ws, run_id="r1")
    moved = [dict(p) for p in [*PEOPLE, *FAMILY]]
    moved[0]["phone"] = "+14155550102"  # Ann's CRM record gets a new phone number
    write_inputs(ws, moved)
    result = resolve(ws, run_id="r2")
    assert result.mode == "incremental"
    fresh = Workspace(tmp_path / "fresh")
    write_inputs(fresh, moved)
    full = resolve(fresh, run_id="f1")
    assert _partition(_clusters(ws)) == _partition(_clusters(fresh))
    # Ann's three records share her email key: of their three pairs, the two with the
    # edited record are scored; the third is read back from the first run.
    assert full.blocking_comparisons["email_key"] == 3
    assert result.blocking_comparisons["email_key"] == 2
    now, whole = _scored(ws), _scored(fresh)
    assert now.keys() == whole.keys()
    for pair, p in whole.items():
        assert abs(now[pair] - p) < 0.05, pair


# Tom Reed's two records share only a loyalty number, which a third record holds too:
# over the frequency guard (two records here), so no rule links on it.
LOYALTY = [
    rec("crm", "c7", "Tom", "Reed", "1985-01-01", loyalty="L88"),
    rec("shop", "a7", "Thomas", "Ward", loyalty="L88"),
    rec("crm", "c8", "Ida", "Park", "1999-12-12", loyalty="L88"),
]


@REUSE
@pytest.mark.parametrize(
    "after",
    [[*LOYALTY[:2], dict(LOYALTY[2], loyalty="L99")], LOYALTY[:2]],
    ids=["the third holder's number edited", "the third holder removed"],
)
def test_a_value_back_under_the_frequency_guard_links_as_a_full_run(
    ws, tmp_path, monkeypatch, after, reuse
):
    """When the third holder no longer holds the number, two records hold it, within the
    guard, and the rule links Tom's records as a full run does."""

    monkeypatch.setattr(incremental, "REUSE_MAX_SHARE", reuse)
    guard = IdentitySettings(max_identifier_records=2)
    first, now, whole = _against_a_full_run(
        ws, tmp_path, [*PEOPLE, *LOYALTY], [*PEOPLE, *after], settings=guard
    )
    assert first["crm:c7"] != first["shop:a7"]
    assert whole["crm:c7"] == whole["shop:a7"]
    assert _partition(now) == _partition(whole)


@REUSE
def test_removing_the_record_that_held_a_person_together_splits_it_as_a_full_run(
    ws, tmp_path, monkeypatch, reuse
):
    """Nina's shop record matches her CRM record (name, birth date, home) and shares a
    loyalty number with her newsletter signup; the CRM record and the signup share
    nothing. With the shop record deleted, nothing holds them together: the other records
    of a removed record's cluster are clustered again."""

    monkeypatch.setattr(incremental, "REUSE_MAX_SHARE", reuse)
    nina = [
        rec("crm", "c9", "Nina", "Berg", "1975-04-04", "nina.b@x.com", None, "2 lake dr", "55401"),
        rec("shop", "a8", "Nina", "Berg", "1975-04-04", None, None, "2 lake dr", "55401", "L55"),
        rec("news", "s8", "Nina", None, loyalty="L55"),
    ]
    first, now, whole = _against_a_full_run(
        ws, tmp_path, [*PEOPLE, *nina], [*PEOPLE, nina[0], nina[2]]
    )
    assert first["crm:c9"] == first["shop:a8"] == first["news:s8"]
    assert whole["crm:c9"] != whole["news:s8"]
    assert _partition(now) == _partition(whole)


@REUSE
def test_a_pair_kept_apart_links_once_what_kept_it_apart_has_moved_away(
    ws, tmp_path, monkeypatch, reuse
):
    """Kimberly's shop account matches her mother's CRM record (same name and home) and,
    a little less, her own (a typo in the name): one cluster cannot hold two birth dates,
    so her own record is kept apart. Her mother moves out: the account now joins
    Kimberly's record, as in a full run, though neither changed nor shares a value with
    the move: the earlier run's kept-apart pairs bring it into the part."""

    monkeypatch.setattr(incremental, "REUSE_MAX_SHARE", reuse)
    family = [
        rec("crm", "c11", "Kimberli", "Campbell", "2001-08-22", None, None, "38 union rd", "10000"),
        rec("shop", "a11", "Kimberly", "Campbell", None, "kc@x.com", None, "38 union rd", "10000"),
        rec("crm", "c12", "Kimberly", "Campbell", "1972-02-02", "km@x.com", None, "38 union rd", "10000"),
    ]  # fmt: skip
    moved = [*family[:2], dict(family[2], street="7 new st", zip="10001")]
    first, now, whole = _against_a_full_run(ws, tmp_path, [*PEOPLE, *family], [*PEOPLE, *moved])
    assert first["shop:a11"] == first["crm:c12"] != first["crm:c11"]
    assert whole["shop:a11"] == whole["crm:c11"]
    assert _partition(now) == _partition(whole)


@REUSE
@pytest.mark.parametrize("change", ["edited", "removed", "added"])
def test_a_block_crossing_the_size_cap_pairs_as_a_full_run(
    ws, tmp_path, monkeypatch, reuse, change
):
    """A blocking value held by more than max_block_records records is left out of its
    rule. Tom's two records share only a home with a neighbour: three records, over a cap
    of two, so the rule never compared them. Once the neighbour moves out (or is deleted)
    the block is within the cap and a full run compares and links Tom's records; the
    increment must too, though neither of them changed. And the other way: a record
    moving in pushes the block over the cap, and the pair a full run no longer compares
    must not be read back from the run before."""

    monkeypatch.setattr(incremental, "REUSE_MAX_SHARE", reuse)
    home = [
        rec("crm", "c13", "Tom", "Reed", "1985-01-01", None, None, "4 mill rd", "02139"),
        rec("shop", "a13", "Tom", "Reed", "1985-01-01", None, None, "4 mill rd", "02139"),
    ]
    neighbour = rec("crm", "c14", "Ida", "Park", "1999-12-12", None, None, "4 mill rd", "02139")
    elsewhere = dict(neighbour, street="7 new st", zip="02140")
    capped = IdentitySettings(
        blocking_rules=[["address_line1_key", "postal_code"]], max_block_records=2
    )
    before, after = {
        "edited": ([*home, neighbour], [*home, elsewhere]),
        "removed": ([*home, neighbour], home),
        "added": ([*home, elsewhere], [*home, neighbour]),
    }[change]
    first, now, whole = _against_a_full_run(
        ws, tmp_path, [*PEOPLE, *before], [*PEOPLE, *after], settings=capped
    )
    linked_first = first["crm:c13"] == first["shop:a13"]
    linked_whole = whole["crm:c13"] == whole["shop:a13"]
    assert linked_first != linked_whole  # the cap decides, both ways
    assert _partition(now) == _partition(whole)


# Tom Reed three times at one home, none with an email or phone: every rule naming his
# name, birth date or home pairs them. Max joins the Lees' home.
TOMS = [
    rec(source, f"{source[0]}13", "Tom", "Reed", "1985-01-01", None, None, "4 mill rd", "02139")
    for source in ("crm", "shop", "news")
]
MAX = rec("crm", "c15", "Max", "Lee", "2005-05-05", None, None, "1 oak st", "94110")


@pytest.mark.parametrize(
    ("limit", "before", "after", "mode"),
    [
        # the home rules' pairs go over the limit: they are tightened to blocks of two
        (6, TOMS[:2], TOMS, "full"),
        # tightened before and after, to the same cap: Max's block of three is left out
        (6, TOMS, [*TOMS, MAX], "incremental"),
        # most rules tightened, and the email rule over the limit on the raw values
        (3, TOMS[:2], TOMS, "full"),
        (2, TOMS, TOMS[:2], "full"),
    ],
    ids=["a rule tightened", "the same cap", "tightened more", "tightened less"],
)
def test_a_rule_tightened_to_the_comparison_limit_pairs_as_a_full_run(
    ws, tmp_path, limit, before, after, mode
):
    """A default blocking rule whose pairs exceed the comparison limit is tightened: its
    blocks are capped lower than identity.max_block_records, as a full run of all the
    records counts them. Capped by a part's own counts, the last two cases left Tom's
    records linked, or apart, unlike a full run. And the pairs read back were formed
    under the caps of the run before, so an increment goes on only while every cap
    stands."""
    capped = IdentitySettings(max_comparisons_per_rule=limit)
    write_inputs(ws, [*PEOPLE, *before])
    resolve(ws, run_id="r1", settings=capped)
    write_inputs(ws, [*PEOPLE, *after])
    result = resolve(ws, run_id="r2", settings=capped)
    fresh = Workspace(tmp_path / "fresh")
    write_inputs(fresh, [*PEOPLE, *after])
    whole = resolve(fresh, run_id="f1", settings=capped)
    assert result.mode == mode, result.mode_reason
    assert any(o["cap"] < capped.max_block_records for o in whole.blocking_left_out)
    assert _partition(_clusters(ws)) == _partition(_clusters(fresh))
    assert _scored(ws) == _scored(fresh)
    assert _blocking_state(ws) == _blocking_state(fresh)


def test_near_misses_and_scored_pairs_are_written_in_the_order_of_their_records():
    """The scoring gives pairs in no fixed order (at 1M, two runs of one increment wrote
    their near misses and scored pairs in different orders); a run writes them sorted by
    their records, so the same inputs give the same files. Joined edges keep the
    clustering's order."""
    import numpy as np
    import pyarrow as pa

    from cdp.identity.outputs import EdgeSet, edge_table
    from cdp.identity.pair_store import pairs_table
    from cdp.identity.scoring import ScoredPairs

    lo, hi = np.array([2, 0, 1, 0]), np.array([3, 3, 2, 1])
    pairs = ScoredPairs(
        4, lo, hi, np.array([0.1, 0.2, 0.3, 0.4]), np.zeros(4, bool), np.zeros(4), {}
    )
    uids = pa.array(["a", "b", "c", "d"])
    clusters = pa.array(["U1", "U2", "U3", "U4"])
    edges = EdgeSet.scored(pairs, np.arange(4), "near_miss")
    near = edge_table(edges, pairs, uids, clusters, joined=False).to_pylist()
    assert [(r["unique_id_l"], r["unique_id_r"], r["match_probability"]) for r in near] == [
        ("a", "b", 0.4),
        ("a", "d", 0.2),
        ("b", "c", 0.3),
        ("c", "d", 0.1),
    ]
    stored = pairs_table(pairs, uids).to_pylist()
    assert [(r["unique_id_l"], r["unique_id_r"], r["match_probability"]) for r in stored] == [
        ("a", "b", 0.4),
        ("a", "d", 0.2),
        ("b", "c", 0.3),
        ("c", "d", 0.1),
    ]
    joined = edge_table(edges, pairs, uids, clusters, joined=True).to_pylist()
    assert [(r["unique_id_l"], r["unique_id_r"]) for r in joined] == [
        ("c", "d"),
        ("a", "d"),
        ("b", "c"),
        ("a", "b"),
    ]
