"""The ETag cache: keys, the ``http_cache`` table on SQLite and PostgreSQL, and the in-memory cache."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa

from devops_automation.store import schema
from devops_automation.store.http_cache import MAX_ETAG, HttpCache, MemoryHttpCache, StoreHttpCache, cache_key

T0 = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
URL = "https://api.github.com/repos/acme/api/actions/runs"
BODY = {"total_count": 2, "workflow_runs": [{"id": 1, "name": "CI", "pull_requests": []}, {"id": 2, "x": None}]}


# -- keys --------------------------------------------------------------------------------------------
def test_key_is_a_sha256_hex_of_system_method_url_and_sorted_parameters() -> None:
    key = cache_key("GET", URL, {"per_page": 100, "created": "2026-11-01"}, system="github")
    text = f"github\nGET\n{URL}\ncreated=2026-11-01&per_page=100"
    assert key == hashlib.sha256(text.encode()).hexdigest()
    assert len(key) == 64  # the width of http_cache.key


def test_same_request_same_key_however_the_parameters_are_given() -> None:
    a = cache_key("GET", URL, {"per_page": 100, "created": "2026-11-01"}, system="github")
    b = cache_key("get", f"{URL}?created=2026-11-01", [("per_page", "100")], system="github")
    c = cache_key(
        "GET", "HTTPS://API.GITHUB.COM/repos/acme/api/actions/runs?per_page=100&created=2026-11-01", system="github"
    )
    d = cache_key("GET", URL, {"created": "2026-11-01", "per_page": 100, "branch": None}, system="github")
    assert a == b == c == d


@pytest.mark.parametrize(
    ("method", "url", "params", "system"),
    [
        ("HEAD", URL, {"per_page": 100, "created": "2026-11-01"}, "github"),
        ("GET", URL + "/1", {"per_page": 100, "created": "2026-11-01"}, "github"),
        ("GET", URL, {"per_page": 100, "created": "2026-11-02"}, "github"),
        ("GET", URL, {"per_page": 100, "created": "2026-11-01", "page": 2}, "github"),
        ("GET", URL, {"per_page": 100, "created": "2026-11-01"}, "gitlab"),
        (
            "GET",
            URL.replace("/Acme", "/acme").replace("acme", "ACME"),
            {"per_page": 100, "created": "2026-11-01"},
            "github",
        ),
    ],
)
def test_a_different_request_has_a_different_key(method, url, params, system) -> None:
    base = cache_key("GET", URL, {"per_page": 100, "created": "2026-11-01"}, system="github")
    assert cache_key(method, url, params, system=system) != base


# -- the table -----------------------------------------------------------------------------------------
def rows(store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(schema.http_cache).order_by(schema.http_cache.c.id))]


def test_store_put_then_get(results_store) -> None:
    cache = StoreHttpCache(results_store)
    key = cache_key("GET", URL, {"page": 1})
    assert cache.get(key) is None
    cache.put(key, URL + "?page=1", 'W/"abc"', {"body": BODY, "next": None}, T0)
    assert cache.get(key) == ('W/"abc"', {"body": BODY, "next": None})
    (row,) = rows(results_store)
    assert row["key"] == key
    assert row["url"] == URL + "?page=1"
    assert row["fetched_at"] == T0
    assert row["last_modified"] is None


def test_store_put_replaces_the_entry(results_store) -> None:
    cache = StoreHttpCache(results_store)
    key = cache_key("GET", URL)
    other = cache_key("GET", URL + "/9")
    cache.put(key, URL, '"one"', [1, 2, 3], T0)
    cache.put(other, URL + "/9", '"nine"', {"id": 9}, T0)
    later = T0 + dt.timedelta(hours=2)
    cache.put(key, URL, '"two"', {"changed": True, "list": ["a", {"b": 1.5}]}, later, last_modified="Mon, 02 Nov 2026")
    assert cache.get(key) == ('"two"', {"changed": True, "list": ["a", {"b": 1.5}]})
    assert cache.get(other) == ('"nine"', {"id": 9})
    got = {r["key"]: r for r in rows(results_store)}
    assert len(got) == 2
    assert got[key]["fetched_at"] == later
    assert got[key]["last_modified"] == "Mon, 02 Nov 2026"


def test_store_keeps_json_scalars_and_null_bodies(results_store) -> None:
    cache = StoreHttpCache(results_store)
    for n, body in enumerate([None, "text", 0, [], {"a": None}]):
        cache.put(f"{n:064d}", URL, f'"{n}"', body, T0)
        assert cache.get(f"{n:064d}") == (f'"{n}"', body)


def test_store_refuses_naive_times_and_skips_overlong_etags(results_store) -> None:
    cache = StoreHttpCache(results_store)
    with pytest.raises(ValueError, match="naive"):
        cache.put("k" * 64, URL, '"x"', {}, dt.datetime(2026, 1, 1))
    cache.put("k" * 64, URL, '"' + "e" * MAX_ETAG + '"', {"big": 1}, T0)
    assert cache.get("k" * 64) is None
    cache.put("k" * 64, URL, '"' + "e" * (MAX_ETAG - 2) + '"', {"big": 1}, T0)
    assert cache.get("k" * 64) == ('"' + "e" * (MAX_ETAG - 2) + '"', {"big": 1})


def test_store_purge_deletes_entries_fetched_before(results_store) -> None:
    cache = StoreHttpCache(results_store)
    for hours in (0, 5, 10):
        cache.put(f"{hours:064d}", URL, f'"{hours}"', {"h": hours}, T0 + dt.timedelta(hours=hours))
    assert cache.purge(T0 + dt.timedelta(hours=5)) == 1
    assert [r["body"] for r in rows(results_store)] == [{"h": 5}, {"h": 10}]
    assert cache.purge(T0) == 0
    with pytest.raises(ValueError, match="naive"):
        cache.purge(dt.datetime(2026, 1, 1))


def test_two_caches_on_one_store_share_entries(results_store) -> None:
    StoreHttpCache(results_store).put("a" * 64, URL, '"1"', {"n": 1}, T0)
    assert StoreHttpCache(results_store).get("a" * 64) == ('"1"', {"n": 1})


# -- batch ---------------------------------------------------------------------------------------------
def checkouts(store) -> list[int]:
    """A counter of the store engine's connection checkouts (``[n]``, updated in place)."""
    count = [0]
    sa.event.listen(store.engine.pool, "checkout", lambda *a: count.__setitem__(0, count[0] + 1))
    return count


def test_batch_writes_at_the_end_once_per_key_what_was_given(results_store) -> None:
    cache = StoreHttpCache(results_store)
    cache.put("a" * 64, URL, '"old"', {"v": 0}, T0)  # an entry the batch replaces
    body = {"runs": [{"id": 1}]}
    later = T0 + dt.timedelta(hours=1)
    with cache.batch() as same:
        assert same is cache
        cache.put("a" * 64, URL + "?page=1", '"first"', {"v": 1}, later)
        cache.put("a" * 64, URL + "?page=1", '"second"', body, later, last_modified="Mon, 02 Nov 2026")
        cache.put("b" * 64, URL + "/9", '"nine"', [1, None, "x"], later)
        body["runs"].append({"id": 2})  # the caller changes the body it was given: not what is written
        assert [r["etag"] for r in rows(results_store)] == ['"old"']  # nothing written yet
        etag, got = cache.get("a" * 64)  # a read sees the kept write, as a copy
        assert (etag, got) == ('"second"', {"runs": [{"id": 1}]})
        got["runs"].clear()
        assert cache.get("a" * 64) == ('"second"', {"runs": [{"id": 1}]})
    got_rows = {r["key"]: r for r in rows(results_store)}
    assert set(got_rows) == {"a" * 64, "b" * 64}
    assert got_rows["a" * 64]["etag"] == '"second"'
    assert got_rows["a" * 64]["body"] == {"runs": [{"id": 1}]}
    assert got_rows["a" * 64]["url"] == URL + "?page=1"
    assert got_rows["a" * 64]["last_modified"] == "Mon, 02 Nov 2026"
    assert got_rows["a" * 64]["fetched_at"] == later
    assert got_rows["b" * 64]["body"] == [1, None, "x"]
    assert (cache.puts, cache.writes) == (4, 3)  # the entry before the batch, then one per key
    assert StoreHttpCache(results_store).get("a" * 64) == ('"second"', {"runs": [{"id": 1}]})


def test_batch_reads_on_one_connection_and_writes_in_one_transaction(results_store) -> None:
    cache = StoreHttpCache(results_store)
    for n in range(3):
        cache.put(f"{n:064d}", URL, f'"{n}"', {"n": n}, T0)
    count = checkouts(results_store)
    for n in range(3):
        cache.get(f"{n:064d}")
    assert count[0] == 3  # one connection per read outside a batch
    count[0] = 0
    with cache.batch():
        for n in range(5):
            assert cache.get(f"{n:064d}") == ((f'"{n}"', {"n": n}) if n < 3 else None)
            cache.put(f"{n + 10:064d}", URL, '"e"', {"n": n}, T0)
        assert count[0] == 1
    assert count[0] == 2  # and one for the writes
    assert len(rows(results_store)) == 8


def test_batch_writes_what_was_fetched_when_the_block_raises(results_store) -> None:
    cache = StoreHttpCache(results_store)
    with pytest.raises(RuntimeError, match="figures failed"), cache.batch():
        cache.put("a" * 64, URL, '"e"', {"kept": True}, T0)
        raise RuntimeError("figures failed")
    assert [r["body"] for r in rows(results_store)] == [{"kept": True}]
    cache.put("b" * 64, URL, '"f"', {}, T0)  # after the block, writes are immediate again
    assert len(rows(results_store)) == 2


def test_nested_batches_write_when_the_outermost_ends(results_store) -> None:
    cache = StoreHttpCache(results_store)
    with cache.batch():
        with cache.batch():
            cache.put("a" * 64, URL, '"e"', {"n": 1}, T0)
        assert rows(results_store) == []
        assert cache.get("a" * 64) == ('"e"', {"n": 1})
    assert len(rows(results_store)) == 1


def test_a_batch_that_cannot_be_written_is_logged_not_raised(results_store, monkeypatch, caplog) -> None:
    cache = StoreHttpCache(results_store)

    def down() -> None:
        raise sa.exc.OperationalError("INSERT", {}, ConnectionError("server closed the connection"))

    with cache.batch():
        cache.put("a" * 64, URL, '"e"', {"n": 1}, T0)
        cache.put("b" * 64, URL, '"f"', {"n": 2}, T0)
        monkeypatch.setattr(results_store, "begin", down)
    assert "http_cache: 2 entries not written (OperationalError" in caplog.text
    monkeypatch.undo()
    assert rows(results_store) == []
    assert cache.writes == 0


# -- memory --------------------------------------------------------------------------------------------
def test_memory_cache_copies_in_and_out() -> None:
    cache = MemoryHttpCache()
    body = {"runs": [{"id": 1}]}
    cache.put("k", URL, '"e"', body, T0)
    body["runs"].append({"id": 2})
    etag, got = cache.get("k")
    assert (etag, got) == ('"e"', {"runs": [{"id": 1}]})
    got["runs"].clear()
    assert cache.get("k") == ('"e"', {"runs": [{"id": 1}]})
    assert cache.get("missing") is None
    assert (cache.gets, cache.hits, cache.puts, len(cache)) == (3, 2, 1, 1)
    with pytest.raises(ValueError, match="naive"):
        cache.put("k", URL, '"e"', {}, dt.datetime(2026, 1, 1))


def test_both_caches_are_http_caches(results_store) -> None:
    assert isinstance(MemoryHttpCache(), HttpCache)
    assert isinstance(StoreHttpCache(results_store), HttpCache)
    assert not isinstance(object(), HttpCache)
