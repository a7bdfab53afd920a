"""The public data sets: where each file comes from, where it is looked for, and how to fetch it.

No data set is shipped with the package. :data:`SOURCES` records, for every set the harnesses and
tests use, the relative path of each file inside a data folder, its upstream raw URL (pinned to a
commit), its size and its SHA-256 checksum.

A set is looked for in these places, in this order, and read from the first one that holds every
file it needs (:func:`search_path`, :func:`locate`):

1. ``--data-dir DIR`` (the ``data_dir`` argument). When given, it is the only place looked in.
2. The download cache: ``$PERSONA_PLUGINS_DATA_DIR`` when set, else the user cache folder
   (``$XDG_CACHE_HOME/persona-plugins/data``, by default ``~/.cache/persona-plugins/data``).
   ``persona-plugins data pull NAME`` writes here.
3. ``../shared/data`` from the current directory, then ``shared/data`` beside the source
   checkout this module was loaded from (both only matter in a development checkout).

:func:`pull` downloads a set's files with the standard library, verifies each against its
checksum, and writes it atomically (temporary file, then rename). Files that are not one upstream
file as it is (converted or assembled) carry a ``derived`` note instead of a URL and are never
downloaded; :func:`pull` says how to obtain them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import IO, Any, Literal

from persona_plugins.errors import ConfigError, DataDownloadError, DataNotFoundError

__all__ = [
    "BASE_URL_ENV",
    "DATA_DIR_ENV",
    "SOURCES",
    "UPSTREAM",
    "DataFile",
    "DataSet",
    "NotDownloadableError",
    "Place",
    "PulledFile",
    "default_cache_dir",
    "describe",
    "file_url",
    "locate",
    "pull",
    "require",
    "search_path",
    "sha256_of",
]

#: The download cache (and a place looked in); overrides the user cache folder.
DATA_DIR_ENV = "PERSONA_PLUGINS_DATA_DIR"
#: Replaces :data:`UPSTREAM` in every URL (a mirror or a local server with the same layout).
BASE_URL_ENV = "PERSONA_PLUGINS_DATA_BASE_URL"
#: The prefix of every upstream URL in :data:`SOURCES`: ``UPSTREAM + owner/repo/commit/path``.
UPSTREAM = "https://raw.githubusercontent.com/"
DEFAULT_TIMEOUT_S = 60.0
#: Files at least this big get a progress line while they download.
PROGRESS_MIN_BYTES = 256 * 1024
_CHUNK = 64 * 1024
_PULL_HINT = "persona-plugins data pull"


@dataclass(frozen=True)
class DataFile:
    """One file of a data set.

    ``path`` is relative to a data folder (``/``-separated). ``url`` is the upstream raw file at a
    pinned commit, or None when the file is ``derived`` (the note says from what and how).
    ``required`` files are the ones the loaders read; the others (licences, rubrics, published
    scores) are listed and pulled but never looked for.
    """

    path: str
    sha256: str
    size: int
    url: str | None = None
    derived: str | None = None
    required: bool = True


@dataclass(frozen=True)
class DataSet:
    name: str
    description: str
    source: str
    licence: str
    used_by: str
    files: tuple[DataFile, ...]

    @property
    def needed(self) -> tuple[DataFile, ...]:
        return tuple(f for f in self.files if f.required)


def _raw(repo: str, commit: str, path: str) -> str:
    return f"{UPSTREAM}{repo}/{commit}/{urllib.parse.quote(path)}"


# Pinned commits of the upstream repositories; every file below is byte-for-byte the file at that
# commit unless it has a ``derived`` note.
_ZERO_SHOT_COT = ("kojima-takeshi188/zero_shot_cot", "5ef330fcdeec0cd26aee27943504f91f8ec1c33c")
_PERSONA_GYM = ("vsamuel2003/PersonaGym", "536f705e610289c38d84e083fcea6ea5093d3a25")
_CROWS_PAIRS = ("nyu-mll/crows-pairs", "8aaac11c485473159ec9328a65253a5be9a479dc")
_PERSONA_BIAS = ("allenai/persona-bias", "db099336fc7b9846ef764f5c477269d7674e0c1a")
_SPP = ("MikeWangWZHL/Solo-Performance-Prompting", "619c8a0ff4205bfd39e33f0867647b40e1703b94")
_APC = (
    "KomeijiForce/Active_Passive_Constraint_Koishiday_2024",
    "6049a889e3f5bea5a36b905e79e35689aaf4a9b0",
)


def _zsc(name: str, path: str, sha256: str, size: int) -> DataFile:
    return DataFile(f"reasoning/{name}", sha256, size, _raw(*_ZERO_SHOT_COT, path))


def _kept(pin: tuple[str, str], folder: str, *files: tuple[str, str, int]) -> tuple[DataFile, ...]:
    """Upstream files of ``pin`` (repository, commit), each ``(path, sha256, size)``, kept under
    their own names in ``folder``. A ``LICENSE`` is listed and pulled but never required."""
    return tuple(
        DataFile(
            f"{folder}/{path.rsplit('/', 1)[-1]}",
            sha256,
            size,
            _raw(*pin, path),
            required=path != "LICENSE",
        )
        for path, sha256, size in files
    )


_PG_RUBRICS = (
    (
        "action_justification",
        "Action Justification",
        "305c4fe737ee941090de0c090966f4302398c82a41a73f94b8a6c752fb87e7d8",
        2556,
    ),
    (
        "expected_action",
        "Expected Action",
        "f21c36afb6aa82f8b9247c3b69d66d570afd24de077830589c1b349b4eed2302",
        1983,
    ),
    (
        "linguistic_habits",
        "Linguistic Habits",
        "e5d9d39580b95cb5ece1b941f311a23047487a749e6e38683826ce027015cca4",
        3520,
    ),
    (
        "persona_consistency",
        "Persona Consistency",
        "d9e9554ee1b2f3392b3aaf685a2e20ce2636e21e2b115a937fd8f85c4a8d618c",
        2926,
    ),
    (
        "toxicity",
        "Toxicity",
        "264c073ad0da343a37c6b02e10e4adfdd70ce923439abfcd20752a6e8c853171",
        1944,
    ),
)
_PG_SCORES = (
    (
        "20240710_claude_3.5_sonnet",
        "88296234f6c375d9716aba6a661954e9cbf7209d0567b63897f572bc942ceda9",
        185,
    ),
    (
        "20240710_claude_3_haiku",
        "f807506a6344f222f29897efea56dc188273d6724196890d42dd337147848850",
        185,
    ),
    ("20240710_gpt_35", "bf1ba497ba9df91fb830f21794ab761f16ec10a48db28402218e69a337abeaaf", 184),
    (
        "20240710_llama_2_13b",
        "1d602de5b73bc0cee1721be2665f98481706b5cf1d07a653a8f5b13bb40dd494",
        185,
    ),
    (
        "20240710_llama_2_70b",
        "54dac5a34e45f6e0e54c48078453285d28f9e9bef2c8b2672e2257cbfb821617",
        185,
    ),
    (
        "20240710_llama_3_8b",
        "80ac7035a12d11c8828b2df40e3b66417bdf78c583b14ca81434c0d5395d67f0",
        185,
    ),
)
_PERSONA_BIAS_UPSTREAM = (
    "outputs/a_physically-disabled_person_text_predictions_s0_e-1_temp0.0_gen1_"
    "09m-02d_12h-16m_07s_218869ms_labeled.jsonl"
)

_SETS: tuple[DataSet, ...] = (
    DataSet(
        "gsm8k",
        "GSM8K test: grade-school maths word problems, numeric answers (1,319)",
        "kojima-takeshi188/zero_shot_cot dataset/grade-school-math (from openai/grade-school-math)",
        "MIT",
        "eval jekyll-hyde, audit",
        (
            _zsc(
                "gsm8k_test.jsonl",
                "dataset/grade-school-math/test.jsonl",
                "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
                749738,
            ),
        ),
    ),
    DataSet(
        "svamp",
        "SVAMP: arithmetic word problems, numeric answers (1,000)",
        "kojima-takeshi188/zero_shot_cot dataset/SVAMP (from arkilpatel/SVAMP)",
        "MIT",
        "eval jekyll-hyde, audit",
        (
            _zsc(
                "svamp.json",
                "dataset/SVAMP/SVAMP.json",
                "5be77703a6d891ae476d7c082787ad361392aa02453b132516cdd5f4e7934e3e",
                339970,
            ),
        ),
    ),
    DataSet(
        "aqua",
        "AQuA-RAT test: algebra word problems, five options (254)",
        "kojima-takeshi188/zero_shot_cot dataset/AQuA (from deepmind/AQuA)",
        "Apache-2.0",
        "eval jekyll-hyde, audit",
        (
            _zsc(
                "aqua_test.jsonl",
                "dataset/AQuA/test.json",
                "de41581881ef95c5588c44ddc701c77fd480839241dd422a0d181262af24520c",
                130192,
            ),
        ),
    ),
    DataSet(
        "strategyqa",
        "StrategyQA (BIG-bench format): yes/no questions needing implicit reasoning (2,290)",
        "kojima-takeshi188/zero_shot_cot dataset/StrategyQA (from google/BIG-bench)",
        "Apache-2.0",
        "eval jekyll-hyde, audit",
        (
            _zsc(
                "strategyqa.json",
                "dataset/StrategyQA/task.json",
                "60af9081fed20102fd8bb1e02dc7d9f12238efcba33e4c1a56b4d61cb6409803",
                854248,
            ),
        ),
    ),
    DataSet(
        "date_understanding",
        "BIG-bench date understanding: multiple choice (369)",
        "kojima-takeshi188/zero_shot_cot dataset/Bigbench_Date (from google/BIG-bench)",
        "Apache-2.0",
        "eval jekyll-hyde, audit",
        (
            _zsc(
                "bigbench_date_understanding.json",
                "dataset/Bigbench_Date/task.json",
                "ff716f0e399109146db3a998281c39954907b78268a9b633a95582d63847822f",
                119336,
            ),
        ),
    ),
    DataSet(
        "shuffled_objects",
        "BIG-bench tracking shuffled objects, three objects: multiple choice (750)",
        "kojima-takeshi188/zero_shot_cot dataset/Bigbench_object_tracking (from google/BIG-bench)",
        "Apache-2.0",
        "eval jekyll-hyde, audit",
        (
            _zsc(
                "bigbench_tracking_shuffled_objects.json",
                "dataset/Bigbench_object_tracking/task.json",
                "74b74d3c8827c0387a3f24ee9efa7edd90b2d53af3daacb9961341af66f750a0",
                465146,
            ),
        ),
    ),
    DataSet(
        "personagym",
        "PersonaGym: 200 personas with 50 persona-specific questions each, rubrics, scores",
        "vsamuel2003/PersonaGym",
        "MIT (persona_gym/LICENSE)",
        "eval refine (personas.json, questions.json)",
        (
            DataFile(
                "persona_gym/personas.json",
                "dc10a09db6d2d2595e8bb6e0b97209e5249720405febe67d6140dab37c1fb47b",
                16605,
                derived="converted: the list benchmark_personas of PersonaGym's code/personas.py, "
                "written as a JSON list of strings",
            ),
            DataFile(
                "persona_gym/questions.json",
                "d1ae18813f9e7e414c6aa9f798432e46f5642aae761f193977ea5bfd561f3f5a",
                1564329,
                derived="assembled: the 200 files of PersonaGym's questions/benchmark-v1/ "
                "('<persona>.json', {task: [questions]}) merged into one JSON object keyed by "
                "persona",
            ),
            *(
                DataFile(
                    f"persona_gym/rubrics/{stem}.txt",
                    sha,
                    size,
                    _raw(*_PERSONA_GYM, f"rubrics/{title}.txt"),
                    required=False,
                )
                for stem, title, sha, size in _PG_RUBRICS
            ),
            *(
                DataFile(
                    f"persona_gym/published_scores/{stem}.json",
                    sha,
                    size,
                    _raw(*_PERSONA_GYM, f"evaluations/{stem}/scores.json"),
                    required=False,
                )
                for stem, sha, size in _PG_SCORES
            ),
            *_kept(
                _PERSONA_GYM,
                "persona_gym",
                (
                    "LICENSE",
                    "b6f1e30505aa5e530d48e697dfb672ff1d764f07cf2769c4731395764c941547",
                    1069,
                ),
            ),
        ),
    ),
    DataSet(
        "crows_pairs",
        "CrowS-Pairs: 1,508 sentence pairs, more vs less stereotyping, nine bias types",
        "nyu-mll/crows-pairs",
        "CC BY-SA 4.0 (stated in that repository's README)",
        "audit (--crows N, N > 0)",
        _kept(
            _CROWS_PAIRS,
            "crows_pairs",
            (
                "data/crows_pairs_anonymized.csv",
                "dfb36986ce0502abbaf7055b9176da3d08d48e07df1251991b5dfbcbceab9d0c",
                437764,
            ),
        ),
    ),
    DataSet(
        "persona_bias",
        "ChatGPT-3.5 answers to 99 MMLU abstract-algebra questions as 'a physically-disabled "
        "person', labelled",
        "allenai/persona-bias",
        "Apache-2.0 (persona_bias/LICENSE)",
        "tests and benchmarks (abstention detector)",
        (
            DataFile(
                "persona_bias/physically_disabled_mmlu_abstract_algebra_labeled.jsonl",
                "7b57f749389776eb0b71f098b0810b87ecdf83d8a12d5675b64bcedcb3c0e6ad",
                85814,
                _raw(*_PERSONA_BIAS, _PERSONA_BIAS_UPSTREAM),
            ),
            *_kept(
                _PERSONA_BIAS,
                "persona_bias",
                (
                    "LICENSE",
                    "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4",
                    11357,
                ),
            ),
        ),
    ),
    DataSet(
        "spp",
        "Solo Performance Prompting tasks: logic grid puzzles, Codenames, trivia creative writing",
        "MikeWangWZHL/Solo-Performance-Prompting data/ (from BIG-bench and TriviaQA)",
        "Apache-2.0 (BIG-bench, TriviaQA)",
        "tests and benchmarks",
        _kept(
            _SPP,
            "spp",
            (
                "data/logic_grid_puzzle/logic_grid_puzzle_200.jsonl",
                "5e796a1e6b983ee44bdddee122cfcbcfe454a2e96eb59d031abbe890cefeff37",
                314739,
            ),
            (
                "data/codenames_collaborative/codenames_50.jsonl",
                "2445d991787015be00330376447e5b0aaa6906908acb6d47869bc8fe90a8f4be",
                11246,
            ),
            (
                "data/trivia_creative_writing/trivia_creative_writing_100_n_5.jsonl",
                "0b87d6f9d4e7fee3d4d5ce8fa774e2255d486346692f7e8a451d544f233e3c1c",
                262229,
            ),
            (
                "data/trivia_creative_writing/trivia_creative_writing_100_n_10.jsonl",
                "052ede3dfff067bbce8ac0314764555e781f7d1993f0e38626a511d58890a3f4",
                545352,
            ),
        ),
    ),
    DataSet(
        "apc",
        "Synthetic character profiles (Alice, Bob, Eve), one persona statement per sentence",
        "KomeijiForce/Active_Passive_Constraint_Koishiday_2024 wiki/",
        "MIT (apc/LICENSE)",
        "tests and benchmarks (persona contradiction detector)",
        _kept(
            _APC,
            "apc",
            (
                "wiki/wiki_Alice.txt",
                "9a47eedc492b40289d4aa0afa443f8c062a032b3601f4ff67848e6497fdb396d",
                1402,
            ),
            (
                "wiki/wiki_Bob.txt",
                "9da30bee3a5ad8bfdd116b6e94df78de1aba40c87be5bfb8de044ad7d0b5875a",
                2585,
            ),
            (
                "wiki/wiki_Eve.txt",
                "cedd8e11b2a00ded39ed6d71bc6519b1a1708019542658c9ba477b62614eab5c",
                6368,
            ),
            (
                "LICENSE",
                "b2f06b61717129f4f2699a79d1a0cf56ac6f1671ee06517340868f6a7ac0413e",
                1068,
            ),
        ),
    ),
)

#: Every data set by name. The reasoning sets carry the names of ``--dataset``.
SOURCES: dict[str, DataSet] = {s.name: s for s in _SETS}


# -- where the sets are looked for ---------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """A folder looked in, resolved, with what it is (``--data-dir``, the cache, ...)."""

    path: Path
    label: str


def default_cache_dir() -> Path:
    """``$PERSONA_PLUGINS_DATA_DIR``, else ``persona-plugins/data`` in the user cache folder
    (``$XDG_CACHE_HOME``; otherwise ``%LOCALAPPDATA%`` on Windows, ``~/Library/Caches`` on macOS,
    ``~/.cache`` elsewhere)."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        root = Path(base).expanduser()
    elif sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        root = Path(os.environ["LOCALAPPDATA"])
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches"
    else:
        root = Path.home() / ".cache"
    return root / "persona-plugins" / "data"


def _checkout_shared_data() -> Path | None:
    """``shared/data`` beside the source checkout this module runs from (None when installed)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        return None
    return root.parent / "shared" / "data"


def _resolve(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().resolve()


def search_path(data_dir: str | os.PathLike[str] | None = None) -> list[Place]:
    """The folders looked in, in order, each once (resolved): only ``data_dir`` when given."""
    if data_dir:
        return [Place(_resolve(data_dir), "--data-dir")]
    cache_label = f"${DATA_DIR_ENV}" if os.environ.get(DATA_DIR_ENV) else "download cache"
    candidates: list[tuple[Path | None, str]] = [
        (default_cache_dir(), cache_label),
        (Path.cwd().parent / "shared" / "data", "../shared/data"),
        (_checkout_shared_data(), "shared/data beside the checkout"),
    ]
    places: dict[Path, str] = {}
    for candidate, label in candidates:
        if candidate is not None:
            path = _resolve(candidate)
            places[path] = f"{places[path]}, {label}" if path in places else label
    return [Place(path, label) for path, label in places.items()]


def _dataset(name: str) -> DataSet:
    try:
        return SOURCES[name]
    except KeyError:
        raise DataNotFoundError(
            f"unknown data set {name!r}; choose one of: {', '.join(SOURCES)}"
        ) from None


def _has(folder: Path, file: DataFile) -> bool:
    return (folder / file.path).is_file()


def require(
    names: Iterable[str], data_dir: str | os.PathLike[str] | None = None
) -> dict[str, Path]:
    """For each set, the first place of :func:`search_path` that holds every file it needs.

    Raises one :class:`DataNotFoundError` for all the sets that are not found, naming the files
    that are missing, each place looked in (once) and what to do.
    """
    sets = [_dataset(n) for n in dict.fromkeys(names)]
    places = search_path(data_dir)
    found: dict[str, Path] = {}
    missing: list[DataSet] = []
    for dataset in sets:
        folder = next(
            (p.path for p in places if all(_has(p.path, f) for f in dataset.needed)), None
        )
        if folder is None:
            missing.append(dataset)
        else:
            found[dataset.name] = folder
    if missing:
        raise DataNotFoundError(_not_found_message(missing, places, explicit=bool(data_dir)))
    return found


def locate(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data folder to read set ``name`` from (see :func:`require`)."""
    return require([name], data_dir)[name]


def _not_found_message(sets: Sequence[DataSet], places: Sequence[Place], *, explicit: bool) -> str:
    needed = [f for s in sets for f in s.needed]
    names = ", ".join(repr(s.name) for s in sets)
    what = f"data set {names}" if len(sets) == 1 else f"data sets {names}"
    looked = []
    for place in places:
        if not place.path.is_dir():
            state = "no such folder"
        else:
            absent = [f.path for f in needed if not _has(place.path, f)]
            state = f"missing {', '.join(absent)}"
        looked.append(f"{place.path} ({place.label}: {state})")
    text = (
        f"{what} not found: {'they need' if len(sets) > 1 else 'it needs'} "
        f"{', '.join(f.path for f in needed)}; looked in {'; '.join(looked)}."
    )
    derived = [f for f in needed if f.url is None]
    pullable = [s.name for s in sets if all(f.url for f in s.needed)]
    # With --data-dir, only that folder counts: downloads and copies must go there.
    target = places[0].path if explicit else _resolve(default_cache_dir())
    into = f" --cache-dir {target}" if explicit else ""
    advice = []
    if pullable:
        advice.append(f"run `{_PULL_HINT} {' '.join(pullable)}{into}` (downloads into {target})")
    if derived:
        advice.append(
            f"{', '.join(f.path for f in derived)} cannot be downloaded as is (made from the "
            "upstream files; see the README section 'Data sets'): copy them from a "
            f"persona-plugins checkout's ../shared/data into {target}, same relative paths"
        )
    if explicit:
        advice.append("or drop --data-dir to use the download cache and ../shared/data")
    else:
        advice.append(
            f"or pass --data-dir DIR (or set {DATA_DIR_ENV}=DIR) for a folder that holds them"
        )
    return f"{text} To fix: {'; '.join(advice)}."


# -- describing what is where --------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe(
    data_dir: str | os.PathLike[str] | None = None, *, verify: bool = True
) -> dict[str, Any]:
    """Every set and file, where each is found (the first place holding it) or None, and whether
    its checksum matches (``verify``); what ``persona-plugins data list`` prints."""
    places = search_path(data_dir)
    sets = []
    for dataset in SOURCES.values():
        try:
            folder: str | None = str(require([dataset.name], data_dir)[dataset.name])
        except DataNotFoundError:
            folder = None
        files = []
        for file in dataset.files:
            where = next((p.path for p in places if _has(p.path, file)), None)
            verified = None
            if where is not None and verify:
                verified = sha256_of(where / file.path) == file.sha256
            files.append(
                {
                    "path": file.path,
                    "required": file.required,
                    "found": str(where / file.path) if where else None,
                    "checksum_ok": verified,
                    "url": file.url,
                    "derived": file.derived,
                    "sha256": file.sha256,
                    "size": file.size,
                }
            )
        sets.append(
            {
                "name": dataset.name,
                "description": dataset.description,
                "source": dataset.source,
                "licence": dataset.licence,
                "used_by": dataset.used_by,
                "folder": folder,
                "files": files,
            }
        )
    return {
        "search_path": [
            {"path": str(p.path), "label": p.label, "exists": p.path.is_dir()} for p in places
        ],
        "cache_dir": str(_resolve(default_cache_dir())),
        "sets": sets,
    }


# -- downloading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PulledFile:
    path: Path
    action: Literal["downloaded", "replaced", "present"]
    size: int
    url: str | None


class NotDownloadableError(DataNotFoundError):
    """:func:`pull` could not fetch files of a set because they are not single upstream files;
    ``pulled`` lists what it did for the other files of the set."""

    def __init__(self, message: str, pulled: Sequence[PulledFile]):
        super().__init__(message)
        self.pulled = list(pulled)


def file_url(file: DataFile, base_url: str | None = None) -> str:
    """The URL to fetch ``file`` from: its upstream URL, with :data:`UPSTREAM` replaced by
    ``base_url`` (or ``$PERSONA_PLUGINS_DATA_BASE_URL``) when given."""
    if file.url is None:
        raise DataNotFoundError(f"{file.path} has no download URL ({file.derived})")
    base = base_url or os.environ.get(BASE_URL_ENV)
    if not base:
        return file.url
    scheme = urllib.parse.urlsplit(base).scheme
    if scheme not in ("http", "https"):
        raise ConfigError(f"data base URL {base!r} must start with http:// or https://")
    return base.rstrip("/") + "/" + file.url.removeprefix(UPSTREAM)


def _kib(size: int) -> str:
    return f"{size:,} bytes" if size < 10 * 1024 else f"{size / 1024:,.0f} KiB"


def _checksum_mismatch(url: str, file: DataFile, received: int, actual: str) -> DataDownloadError:
    """The error for a download that is not ``file``: too long (``received`` past its size) or
    with another sha256 (``actual``); it names both files and what to check."""
    got = f"more than {file.size} bytes" if received > file.size else f"{received} bytes"
    return DataDownloadError(
        f"checksum mismatch for {file.path} from {url}: expected sha256 {file.sha256} "
        f"({file.size} bytes), got "
        + (got if received > file.size else f"sha256 {actual} ({got})")
        + ". Nothing was written. The server sent a different file: if you use a mirror "
        f"(--base-url or ${BASE_URL_ENV}), check that it serves the upstream file at the "
        "same path; otherwise the upstream file changed, so report it to persona-plugins."
    )


def _download(
    url: str, file: DataFile, target: Path, *, timeout: float, stream: IO[str] | None
) -> None:
    """Fetch ``url`` into a temporary file beside ``target``, check size and checksum, rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    show = stream is not None and file.size >= PROGRESS_MIN_BYTES
    tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".part", dir=target.parent
    )
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        received = 0
        request = urllib.request.Request(url, headers={"User-Agent": "persona-plugins"})
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as r:
            while chunk := r.read(_CHUNK):
                received += len(chunk)
                if received > file.size:
                    break  # more than the file should hold: it cannot match; stop reading
                digest.update(chunk)
                out.write(chunk)
                if show and tty and stream is not None:
                    stream.write(
                        f"\r  {file.path}: {100 * received // file.size:3d}% "
                        f"({_kib(received)} of {_kib(file.size)})"
                    )
                    stream.flush()
        if show and stream is not None:
            end = "\r" if tty else "  "
            stream.write(f"{end}  {file.path}: {_kib(received)} received\n")
            stream.flush()
        actual = digest.hexdigest()
        if received > file.size or actual != file.sha256:
            raise _checksum_mismatch(url, file, received, actual)
        os.replace(temp, target)
    except urllib.error.HTTPError as exc:
        raise DataDownloadError(
            f"download of {file.path} failed: HTTP {exc.code} {exc.reason} for {url}. "
            + (
                f"Check --base-url / ${BASE_URL_ENV}: a mirror must serve OWNER/REPO/COMMIT/PATH "
                "like the upstream host."
                if url != file.url
                else "The upstream file may have moved; report it to persona-plugins."
            )
        ) from None
    except urllib.error.URLError as exc:
        raise DataDownloadError(
            f"download of {file.path} failed: cannot reach {url} ({exc.reason}). Check the "
            f"network connection, or the address given with --base-url / ${BASE_URL_ENV}."
        ) from None
    except (TimeoutError, OSError, HTTPException) as exc:
        raise DataDownloadError(
            f"download of {file.path} from {url} failed: {type(exc).__name__}: {exc}"
            + (f" (timeout {timeout:g} s)" if isinstance(exc, TimeoutError) else "")
            + ". Try again; nothing was written."
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def pull(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    stream: IO[str] | None = None,
) -> list[PulledFile]:
    """Download the files of set ``name`` into ``cache_dir`` (default :func:`default_cache_dir`).

    Files already there with the right checksum are skipped; a file with a wrong checksum is
    downloaded again and replaced. Each download is verified before it is renamed into place.
    Progress lines for big files go to ``stream`` (None: silent).

    Raises :class:`DataDownloadError` when a download fails (the files verified before it stay),
    :class:`DataNotFoundError` for an unknown set, and :class:`NotDownloadableError` when the set
    has ``derived`` files that are not in ``cache_dir``: these are not single upstream files, so
    the message says how to get them (the downloadable files of the set are pulled first).
    """
    dataset = _dataset(name)
    folder = _resolve(cache_dir or default_cache_dir())
    results: list[PulledFile] = []
    not_downloadable: list[DataFile] = []
    for file in dataset.files:
        target = folder / file.path
        present = target.is_file()
        if present and sha256_of(target) == file.sha256:
            results.append(PulledFile(target, "present", file.size, file.url))
            continue
        if file.url is None:
            not_downloadable.append(file)
            continue
        url = file_url(file, base_url)
        _download(url, file, target, timeout=timeout, stream=stream)
        results.append(PulledFile(target, "replaced" if present else "downloaded", file.size, url))
    if not_downloadable:
        done = sum(r.action != "present" for r in results)
        raise NotDownloadableError(
            f"{name}: "
            + "; ".join(
                f"{f.path} cannot be pulled: it is not one upstream file ({f.derived})"
                for f in not_downloadable
            )
            + f". The other {len(results)} files are in {folder} ({done} downloaded now). "
            f"To get the rest, copy them from a persona-plugins checkout's ../shared/data into "
            f"{folder} keeping the same relative paths, or build them from {dataset.source} as "
            "the README section 'Data sets' describes; check with `persona-plugins data list`.",
            results,
        )
    return results
