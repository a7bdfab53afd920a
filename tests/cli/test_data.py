"""The public data sets: where they are looked for, what a missing set says, and `data pull`.

Downloads go to a real ``http.server`` on 127.0.0.1 (a thread of the test) serving small files
written in ``tmp_path``, with their checksums patched into the table; a guard fails any test that
tries to open a URL anywhere else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from persona_plugins.errors import DataNotFoundError
from persona_plugins.evaluation import data_sources
from persona_plugins.evaluation.data_sources import (
    BASE_URL_ENV,
    DATA_DIR_ENV,
    SOURCES,
    UPSTREAM,
    default_cache_dir,
    search_path,
)
from persona_plugins.evaluation.datasets import DATASETS, load_dataset
from tests.cli.helpers import run
from tests.conftest import free_port


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Nothing in these tests may reach the internet: every URL opened must be on 127.0.0.1."""
    real = urllib.request.urlopen

    def guarded(request: Any, *args: Any, **kwargs: Any) -> Any:
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        host = urllib.parse.urlsplit(url).hostname
        assert host == "127.0.0.1", f"test tried to open {url}"
        return real(request, *args, **kwargs)

    monkeypatch.setattr(data_sources.urllib.request, "urlopen", guarded)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> dict[str, Path]:
    """A clone without the shared data: the cache is an empty folder, the current directory is
    ``<tmp>/main`` and the checkout's ``shared/data`` is ``<tmp>/shared/data`` too, so the two
    default shared-data places are the same folder (as they are in a real checkout)."""
    cache = tmp_path / "cache"
    shared = tmp_path / "shared" / "data"
    (tmp_path / "main").mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(cache))
    monkeypatch.setattr(data_sources, "_checkout_shared_data", lambda: shared)
    monkeypatch.chdir(tmp_path / "main")
    return {"cache": cache, "shared": shared}


# -- a set that is not found ---------------------------------------------------------------------


def test_the_places_looked_in_are_resolved_and_listed_once(isolated):
    places = search_path()
    assert [p.path for p in places] == [isolated["cache"], isolated["shared"]]
    assert places[1].label == "../shared/data, shared/data beside the checkout"
    assert [p.path for p in search_path("x/../y")] == [Path.cwd() / "y"]


def test_a_missing_set_names_its_files_each_place_once_and_exits_2(capsys, isolated):
    code, out, err = run(capsys, "eval", "jekyll-hyde", "--dataset", "strategyqa", "--limit", "5")
    assert code == 2 and not out
    assert err.count("\n") == 1
    assert "data set 'strategyqa' not found" in err
    assert "reasoning/strategyqa.json" in err
    assert err.count(str(isolated["shared"])) == 1
    assert str(isolated["cache"]) in err
    assert "persona-plugins data pull strategyqa" in err
    assert "--data-dir DIR" in err and DATA_DIR_ENV in err
    assert "gsm8k" not in err


def test_eval_refine_asks_for_the_personagym_files_only(capsys, isolated):
    code, _, err = run(capsys, "eval", "refine", "--limit", "1")
    assert code == 2 and err.count("\n") == 1
    assert "persona_gym/personas.json" in err and "persona_gym/questions.json" in err
    assert "gsm8k" not in err.lower() and "reasoning/" not in err and "rubrics" not in err
    assert "cannot be downloaded as is" in err  # both files are built from upstream files


def test_audit_needs_crows_pairs_only_when_it_measures_stereotypes(capsys, isolated):
    code, _, err = run(capsys, "audit", "--dataset", "aqua", "--crows", "0")
    assert code == 2 and "reasoning/aqua_test.jsonl" in err and "crows_pairs/" not in err
    code, _, err = run(capsys, "audit", "--dataset", "aqua", "--crows", "5")
    assert code == 2 and err.count("\n") == 1
    assert "reasoning/aqua_test.jsonl" in err and "crows_pairs/crows_pairs_anonymized.csv" in err
    assert "persona-plugins data pull aqua crows_pairs" in err


def test_a_data_dir_given_is_the_only_place_looked_in(capsys, isolated, tmp_path):
    empty = tmp_path / "mine"
    empty.mkdir()
    argv = ["eval", "jekyll-hyde", "--dataset", "gsm8k", "--data-dir", str(empty)]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert f"{empty} (--data-dir: missing reasoning/gsm8k_test.jsonl)" in err
    assert str(isolated["cache"]) not in err.split("To fix")[0]
    assert f"data pull gsm8k --cache-dir {empty}" in err
    with pytest.raises(DataNotFoundError, match="no such folder"):
        load_dataset("gsm8k", tmp_path / "nowhere")


def test_a_set_is_read_from_the_first_place_holding_all_its_files(isolated):
    # Half a set in the cache does not hide the whole set further down the search path.
    whole = isolated["shared"] / "reasoning"
    whole.mkdir(parents=True)
    (whole / "strategyqa.json").write_text(json.dumps(_bigbench(["Is ice cold?"])))
    assert data_sources.locate("strategyqa") == isolated["shared"]
    (isolated["cache"] / "reasoning").mkdir(parents=True)
    (isolated["cache"] / "reasoning" / "strategyqa.json").write_text(
        json.dumps(_bigbench(["Is fire hot?", "Is snow white?"]))
    )
    assert data_sources.locate("strategyqa") == isolated["cache"]
    assert [q.text for q in load_dataset("strategyqa")] == ["Is fire hot?", "Is snow white?"]


# -- the table and `data list` -------------------------------------------------------------------


def test_every_loader_set_is_in_the_table_with_pinned_upstream_urls():
    assert set(DATASETS) <= set(SOURCES)
    assert {"personagym", "crows_pairs"} <= set(SOURCES)
    for dataset in SOURCES.values():
        assert dataset.needed, dataset.name
        for file in dataset.files:
            assert len(file.sha256) == 64 and file.size > 0
            assert (file.url is None) == (file.derived is not None), file.path
            if file.url:
                owner, repo, commit, _ = file.url.removeprefix(UPSTREAM).split("/", 3)
                assert file.url.startswith(UPSTREAM) and owner and repo
                assert len(commit) == 40 and int(commit, 16) >= 0, file.url


def test_the_cache_honours_the_env_variable_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(DATA_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "persona-plugins" / "data"


def test_data_list_finds_every_set_in_the_shared_folder_with_matching_checksums(
    capsys, monkeypatch, tmp_path, shared_data
):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "empty-cache"))
    code, out, _ = run(capsys, "data", "list", "--json")
    assert code == 0
    info = json.loads(out)
    assert str(shared_data.resolve()) in [p["path"] for p in info["search_path"]]
    for entry in info["sets"]:
        assert entry["folder"] == str(shared_data.resolve()), entry["name"]
        assert entry["source"] and entry["licence"]
        for file in entry["files"]:
            assert file["found"] == str(shared_data.resolve() / file["path"]), file["path"]
            assert file["checksum_ok"] is True, f"{file['path']}: the table's checksum is stale"
    code, text, _ = run(capsys, "data")  # no action: the list
    assert code == 0
    assert str(shared_data.resolve()) in text and "missing" not in text
    for name in SOURCES:
        assert f"\n{name}: " in text
    assert "CC BY-SA 4.0" in text and "not downloadable: assembled" in text


def test_data_list_says_what_is_missing(capsys, isolated):
    code, out, _ = run(capsys, "data", "list")
    assert code == 0
    assert "(no such folder)" in out
    assert "reasoning/strategyqa.json: missing" in out


# -- `data pull` against a local server ----------------------------------------------------------


class _Quiet(SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        _Quiet.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, Path]]:
    """``(base_url, root)``: a static file server on 127.0.0.1 serving ``root``."""
    root = tmp_path / "served"
    root.mkdir()
    _Quiet.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _bigbench(questions: list[str]) -> dict[str, Any]:
    return {"examples": [{"input": q, "target_scores": {"Yes": 1, "No": 0}} for q in questions]}


def _serve(
    monkeypatch, root: Path, name: str, contents: dict[str, bytes], *, tamper: bytes | None = None
) -> None:
    """Serve ``contents`` (data-folder path -> bytes) at the upstream paths of set ``name`` and
    patch their checksums and sizes into the table; ``tamper`` is served instead of each file."""
    files = []
    for file in SOURCES[name].files:
        if file.path in contents:
            body = contents[file.path]
            file = dataclasses.replace(
                file, sha256=hashlib.sha256(body).hexdigest(), size=len(body)
            )
            assert file.url
            served = root / urllib.parse.unquote(file.url.removeprefix(UPSTREAM))
            served.parent.mkdir(parents=True, exist_ok=True)
            served.write_bytes(tamper if tamper is not None else body)
        files.append(file)
    monkeypatch.setitem(SOURCES, name, dataclasses.replace(SOURCES[name], files=tuple(files)))


STRATEGYQA = json.dumps(_bigbench(["Is fire hot?", "Can fish fly?"])).encode()


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_pull_downloads_verifies_and_then_skips(capsys, monkeypatch, tmp_path, server):
    base, root = server
    _serve(monkeypatch, root, "strategyqa", {"reasoning/strategyqa.json": STRATEGYQA})
    monkeypatch.setattr(data_sources, "PROGRESS_MIN_BYTES", 1)
    cache = tmp_path / "cache"
    code, out, err = run(
        capsys, "data", "pull", "strategyqa", "--cache-dir", str(cache), "--base-url", base
    )
    assert code == 0, err
    assert (cache / "reasoning" / "strategyqa.json").read_bytes() == STRATEGYQA
    assert _leftovers(cache) == [cache / "reasoning" / "strategyqa.json"]  # no temporary file
    assert "downloaded: reasoning/strategyqa.json" in out
    assert "reasoning/strategyqa.json" in err  # the progress line
    assert _Quiet.requests == [
        "/kojima-takeshi188/zero_shot_cot/5ef330fcdeec0cd26aee27943504f91f8ec1c33c/"
        "dataset/StrategyQA/task.json"
    ]
    questions = load_dataset("strategyqa", cache)
    assert [q.gold for q in questions] == ["yes", "yes"]

    code, out, _ = run(
        capsys, "data", "pull", "strategyqa", "--cache-dir", str(cache), "--base-url", base
    )
    assert code == 0 and "0 downloaded" in out and "1 already present" in out
    assert len(_Quiet.requests) == 1  # nothing fetched the second time

    (cache / "reasoning" / "strategyqa.json").write_text("damaged")
    code, out, _ = run(
        capsys, "data", "pull", "strategyqa", "--cache-dir", str(cache), "--base-url", base
    )
    assert code == 0 and "replaced: reasoning/strategyqa.json" in out
    assert (cache / "reasoning" / "strategyqa.json").read_bytes() == STRATEGYQA


def test_pull_into_the_default_cache_is_where_the_loaders_look(capsys, monkeypatch, server):
    # The env variables alone: PERSONA_PLUGINS_DATA_DIR is the cache, the base URL from the env.
    base, root = server
    monkeypatch.setenv(BASE_URL_ENV, base)
    monkeypatch.setenv(DATA_DIR_ENV, str(root.parent / "cache"))
    cache = root.parent / "cache"
    _serve(monkeypatch, root, "strategyqa", {"reasoning/strategyqa.json": STRATEGYQA})
    code, out, err = run(capsys, "data", "pull", "strategyqa")
    assert code == 0, err
    assert f"into {cache}" in out and "not the default cache" not in out
    # The cache comes before ../shared/data: the two fixture questions are read, not the 2,290.
    assert len(load_dataset("strategyqa")) == 2


def test_a_checksum_mismatch_leaves_nothing_behind(capsys, monkeypatch, tmp_path, server):
    base, root = server
    _serve(
        monkeypatch,
        root,
        "strategyqa",
        {"reasoning/strategyqa.json": STRATEGYQA},
        tamper=STRATEGYQA.replace(b"fire", b"FIRE"),
    )
    cache = tmp_path / "cache"
    code, _, err = run(
        capsys, "data", "pull", "strategyqa", "--cache-dir", str(cache), "--base-url", base
    )
    assert code == 1 and err.count("\n") == 1
    expected = hashlib.sha256(STRATEGYQA).hexdigest()
    actual = hashlib.sha256(STRATEGYQA.replace(b"fire", b"FIRE")).hexdigest()
    assert "checksum mismatch for reasoning/strategyqa.json" in err
    assert f"expected sha256 {expected}" in err and f"got sha256 {actual}" in err
    assert "Nothing was written" in err and "--base-url" in err
    assert _leftovers(cache) == []


def test_a_longer_file_than_expected_is_cut_off_and_rejected(capsys, monkeypatch, tmp_path, server):
    base, root = server
    _serve(
        monkeypatch,
        root,
        "strategyqa",
        {"reasoning/strategyqa.json": STRATEGYQA},
        tamper=STRATEGYQA * 50,
    )
    cache = tmp_path / "cache"
    code, _, err = run(
        capsys, "data", "pull", "strategyqa", "--cache-dir", str(cache), "--base-url", base
    )
    assert code == 1 and f"got more than {len(STRATEGYQA)} bytes" in err
    assert _leftovers(cache) == []


def test_http_404_names_the_url(capsys, monkeypatch, tmp_path, server):
    base, root = server
    _serve(monkeypatch, root, "strategyqa", {"reasoning/strategyqa.json": STRATEGYQA})
    for served in root.rglob("task.json"):
        served.unlink()
    cache = tmp_path / "cache"
    code, _, err = run(
        capsys, "data", "pull", "strategyqa", "--cache-dir", str(cache), "--base-url", base
    )
    url = f"{base}/kojima-takeshi188/zero_shot_cot/"
    assert code == 1 and err.count("\n") == 1
    assert "HTTP 404" in err and url in err and "dataset/StrategyQA/task.json" in err
    assert _leftovers(cache) == []


def test_a_server_that_is_down_is_a_clear_error(capsys, tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    cache = tmp_path / "cache"
    code, _, err = run(
        capsys, "data", "pull", "gsm8k", "--cache-dir", str(cache), "--base-url", base
    )
    assert code == 1 and err.count("\n") == 1
    assert f"cannot reach {base}/kojima-takeshi188/zero_shot_cot/" in err
    assert "refused" in err.lower()
    assert _leftovers(cache) == []


def test_a_bad_base_url_is_bad_input(capsys, tmp_path):
    code, _, err = run(
        capsys, "data", "pull", "gsm8k", "--cache-dir", str(tmp_path), "--base-url", "ftp://x"
    )
    assert code == 2 and "must start with http:// or https://" in err


def test_files_that_are_not_one_upstream_file_are_not_pulled(capsys, monkeypatch, tmp_path, server):
    base, root = server
    verbatim = {f.path: f"{f.path}\n".encode() for f in SOURCES["personagym"].files if f.url}
    _serve(monkeypatch, root, "personagym", verbatim)
    cache = tmp_path / "cache"
    code, out, err = run(
        capsys, "data", "pull", "personagym", "--cache-dir", str(cache), "--base-url", base
    )
    assert code == 2 and err.count("\n") == 1
    assert "persona_gym/personas.json cannot be pulled: it is not one upstream file" in err
    assert "persona_gym/questions.json cannot be pulled" in err and "assembled" in err
    assert "../shared/data" in err and "README section 'Data sets'" in err
    assert f"{len(verbatim)} downloaded" in out  # the rubrics, scores and licence
    assert sorted(p.relative_to(cache).as_posix() for p in _leftovers(cache)) == sorted(verbatim)
    assert not (cache / "persona_gym" / "personas.json").exists()
