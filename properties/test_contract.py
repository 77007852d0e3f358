"""The backend contract: loading, selection, availability, completeness, documentation.

These tests hold :mod:`backends.contract` and the built-in backends to the
contract (its docstring and the README's "Verifying your own backend"): every
built-in name loads to a backend with the mandatory attributes; a GPU backend
without its GPU loads and says why it cannot run; a spec that names nothing
fails with an error naming the spec; ``--backend`` beats ``NNSPEC_BACKENDS``
beats the default; the built-in backends implement the whole contract; the
README documents every operation.

And the project stands on its own: every "notes 00N" a docstring cites has its
entry in ``docs/bibliography.md``, nothing cites a document the repository
lacks, and the distribution installs no module into ``site-packages`` (README,
"Installing").
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backends import contract
from backends.contract import (
    BACKWARD_OPERATIONS,
    BUILTIN,
    DEVICES,
    DTYPES,
    OPERATIONS,
    BackendError,
)

ROOT = Path(__file__).resolve().parents[1]
GPU_BACKENDS = ("torch-cuda", "cupy")


def _torch_cuda_present() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _cupy_gpu_present() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device: CuPy raises its own errors
        return False


def _usable_here(name: str) -> bool:
    """Whether built-in ``name`` can run on this machine, decided independently."""
    if name == "numpy":
        return True
    if name == "torch":
        return importlib.util.find_spec("torch") is not None
    if name == "torch-cuda":
        return _torch_cuda_present()
    if name == "cupy":
        return _cupy_gpu_present()
    raise AssertionError(f"test does not know built-in backend {name!r}")


# -- loading the built-ins ----------------------------------------------------


@pytest.mark.parametrize("name", list(BUILTIN))
def test_builtin_loads_with_mandatory_attributes(name: str) -> None:
    backend = contract.load(name)
    where = f"built-in backend {name!r} ({BUILTIN[name]})"
    assert backend.name == name, f"{where}: name is {backend.name!r}, not {name!r}"
    assert isinstance(backend.dtypes, tuple) and backend.dtypes, (
        f"{where}: dtypes must be a non-empty tuple, got {backend.dtypes!r}"
    )
    assert set(backend.dtypes) <= set(DTYPES), (
        f"{where}: dtypes {backend.dtypes!r} not drawn from {DTYPES}"
    )
    assert backend.device in DEVICES, f"{where}: device {backend.device!r}"
    assert hasattr(backend, "unavailable_reason"), (
        f"{where}: no 'unavailable_reason' attribute (None when usable)"
    )
    reason = backend.unavailable_reason
    assert reason is None or (isinstance(reason, str) and reason), (
        f"{where}: unavailable_reason must be None or a non-empty str, got {reason!r}"
    )
    for method in ("asarray", "to_numpy", "synchronize"):
        assert callable(getattr(backend, method, None)), f"{where}: no {method}()"
    assert isinstance(backend, contract.Backend), f"{where}: not a contract.Backend"


@pytest.mark.parametrize("name", GPU_BACKENDS)
def test_gpu_backend_loads_and_reports_its_availability(name: str) -> None:
    """Without its GPU a GPU backend still loads, and says why it cannot run."""
    backend = contract.load(name)
    assert backend.device == "gpu", f"{name}: device {backend.device!r}, not 'gpu'"
    reason = contract.unavailable_reason(backend)
    if _usable_here(name):
        assert reason is None, f"{name}: the GPU is present but it says {reason!r}"
    else:
        assert isinstance(reason, str) and reason.strip(), (
            f"{name}: no GPU here, yet unavailable_reason is {reason!r}"
        )


def test_available_lists_exactly_the_usable_builtins() -> None:
    names = contract.available()
    assert "numpy" in names, f"available() = {names}: numpy is always usable"
    expected = [name for name in BUILTIN if _usable_here(name)]
    assert names == expected, f"available() = {names}, expected {expected} here"
    for name in names:
        reason = contract.unavailable_reason(contract.load(name))
        assert reason is None, f"available() lists {name!r} but it says {reason!r}"


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_cpu_backend_round_trips_arrays(name: str) -> None:
    backend = contract.load(name)
    if backend.unavailable_reason:
        pytest.skip(f"backend {name!r} unavailable: {backend.unavailable_reason}")
    host = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    for dtype in backend.dtypes:
        back = backend.to_numpy(backend.asarray(host, dtype))
        backend.synchronize()
        assert isinstance(back, np.ndarray), f"{name} {dtype}: to_numpy: {type(back)}"
        assert back.dtype == np.dtype(dtype), f"{name}: {back.dtype} for {dtype}"
        np.testing.assert_array_equal(
            back, host.astype(dtype), err_msg=f"{name} {dtype} round trip"
        )


# -- specs that name nothing ----------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "no.such.module:backend",
        "numpy_typo",
        "backends.numpy_backend:no_such_attribute",
        "backends.contract",
        ":backend",
    ],
)
def test_unloadable_spec_raises_backend_error_naming_it(spec: str) -> None:
    with pytest.raises(BackendError) as raised:
        contract.load(spec)
    assert repr(spec) in str(raised.value) or spec in str(raised.value), (
        f"load({spec!r}) raised {raised.value!r}, which does not name the spec"
    )


def test_typo_of_builtin_lists_the_builtin_names() -> None:
    with pytest.raises(BackendError) as raised:
        contract.load("numpy_typo")
    for name in BUILTIN:
        assert name in str(raised.value), f"{raised.value!r} does not offer {name!r}"


@pytest.fixture
def fake_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """An importable module ``nnspec_fake_backends`` the test fills with objects."""
    module = types.ModuleType("nnspec_fake_backends")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


class _Complete:
    name = "fake"
    dtypes = ("float64",)
    device = "cpu"
    unavailable_reason = None

    def asarray(self, a: np.ndarray, dtype: str) -> np.ndarray:
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def synchronize(self) -> None:
        pass


def test_load_reports_every_missing_attribute(fake_module: types.ModuleType) -> None:
    class OnlyAName:
        name = "half_done"

    fake_module.backend = OnlyAName()
    with pytest.raises(BackendError) as raised:
        contract.load("nnspec_fake_backends:backend")
    message = str(raised.value)
    assert "nnspec_fake_backends:backend" in message, message
    for attribute in ("dtypes", "device", "asarray", "to_numpy", "synchronize"):
        assert attribute in message, f"{message!r} does not name {attribute!r}"
    assert "'name'" not in message, f"{message!r} blames the valid 'name'"


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("name", ""),
        ("dtypes", ("float16",)),
        ("dtypes", ["float32"]),
        ("device", "tpu"),
    ],
)
def test_load_rejects_invalid_attribute(
    fake_module: types.ModuleType, attribute: str, value: Any
) -> None:
    backend = _Complete()
    setattr(backend, attribute, value)
    fake_module.backend = backend
    with pytest.raises(BackendError, match=attribute):
        contract.load("nnspec_fake_backends:backend")


def test_load_accepts_instance_class_factory_and_dotted_attribute(
    fake_module: types.ModuleType,
) -> None:
    fake_module.backend = _Complete()
    fake_module.Backend = _Complete
    fake_module.make_backend = lambda: _Complete()
    fake_module.namespace = types.SimpleNamespace(backend=_Complete())
    assert contract.load("nnspec_fake_backends:backend") is fake_module.backend
    for spec in ("Backend", "make_backend", "namespace.backend"):
        loaded = contract.load(f" nnspec_fake_backends:{spec} ")
        assert isinstance(loaded, _Complete), f"load({spec!r}) gave {loaded!r}"


def test_implements_and_missing_operations() -> None:
    backend = _Complete()
    backend.relu = lambda x: x
    backend.relu_backward = None  # an attribute that is not callable is absent
    assert contract.implements(backend, "relu")
    assert not contract.implements(backend, "relu_backward")
    missing = contract.missing_operations(backend)
    assert "relu" not in missing and "relu_backward" in missing
    assert len(missing) == len(OPERATIONS) + len(BACKWARD_OPERATIONS) - 1


# -- selection ----------------------------------------------------------------------


def test_selected_prefers_option_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(contract.ENVIRONMENT_VARIABLE, raising=False)
    assert contract.selected([]) == list(BUILTIN)
    assert contract.selected(None) == list(BUILTIN)

    monkeypatch.setenv(contract.ENVIRONMENT_VARIABLE, " torch, pkg.mod:backend ,,torch")
    assert contract.selected([]) == ["torch", "pkg.mod:backend"]

    option = ["numpy", "examples.tiny:backend", "numpy"]
    assert contract.selected(option) == ["numpy", "examples.tiny:backend"]

    monkeypatch.setenv(contract.ENVIRONMENT_VARIABLE, " , ")
    assert contract.selected([]) == list(BUILTIN)


# -- completeness and documentation ---------------------------------------------


def test_operation_lists_are_consistent() -> None:
    assert len(set(OPERATIONS)) == len(OPERATIONS), "an operation is listed twice"
    assert len(set(BACKWARD_OPERATIONS)) == len(BACKWARD_OPERATIONS)
    assert contract.NOT_DIFFERENTIABLE <= set(OPERATIONS)
    for name in BACKWARD_OPERATIONS:
        assert name.removesuffix("_backward") in OPERATIONS, name


@pytest.mark.parametrize("name", list(BUILTIN))
def test_builtin_implements_the_whole_contract(name: str) -> None:
    """numpy and torch implement every operation, and so do the GPU backends.

    A backend unavailable here is checked on its class: its methods must
    exist even where it cannot run.
    """
    backend = contract.load(name)
    everything = OPERATIONS + BACKWARD_OPERATIONS
    cls = type(backend)
    missing_in_class = [op for op in everything if not callable(getattr(cls, op, None))]
    missing = contract.missing_operations(backend)
    assert not missing_in_class and not missing, (
        f"built-in backend {name!r} lacks {len(set(missing) | set(missing_in_class))} "
        f"operation(s) of the contract: {sorted(set(missing) | set(missing_in_class))}"
    )


def _readme_code_text(readme: str) -> str:
    """The text of the README's inline code spans and fenced code blocks."""
    fenced = re.findall(r"^(```|~~~)[^\n]*\n(.*?)^\1", readme, flags=re.M | re.S)
    without_fences = re.sub(r"^(```|~~~)[^\n]*\n.*?^\1", "", readme, flags=re.M | re.S)
    inline = re.findall(r"(`+)(.+?)\1", without_fences, flags=re.S)
    return "\n".join([body for _, body in fenced] + [body for _, body in inline])


def test_readme_documents_every_operation() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = _readme_code_text(readme)
    mentioned = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
    missing = [op for op in OPERATIONS if op not in mentioned]
    assert not missing, (
        f"README.md does not mention {len(missing)} operation(s) of "
        f"backends.contract.OPERATIONS in backticks or a code block: {missing}"
    )


# -- the project stands on its own -----------------------------------------------

#: Citations of what a reader of the repository cannot open: design documents it
#: never had, a folder of notes beside it, an issue tracker's numbering. (Spelt so
#: that the patterns do not match their own source.)
FOREIGN_CITATION = re.compile(
    r"CONTRACT\.md|DESIGN\.md|\.\./shared|\bnotes[/]|\bissue\s+(?:item\s+)?\d"
)
#: A citation of one of the lecture notes, "notes 002" or "Notes 002".
NOTES_CITATION = re.compile(r"\bnotes? (\d{3})\b", flags=re.I)
BIBLIOGRAPHY = ROOT / "docs" / "bibliography.md"
_TEXT_SUFFIXES = frozenset({".py", ".md", ".toml", ".json", ".yml", ".yaml", ".html"})
#: Folders that are not the project's text: tools' caches, built sites.
_SKIPPED_FOLDERS = frozenset(
    {"_report", "build", "dist", "site", "html", "__pycache__"}
)


def _project_text_files() -> list[Path]:
    """The repository's own text files (no tool caches, environments or builds)."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [
            name
            for name in subfolders
            if name not in _SKIPPED_FOLDERS
            and (not name.startswith(".") or name in (".github", ".ci"))
        ]
        found += [Path(folder, n) for n in files if Path(n).suffix in _TEXT_SUFFIXES]
    return sorted(found)


def test_nothing_cites_a_document_the_repository_lacks() -> None:
    citing = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _project_text_files()
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        )
        if FOREIGN_CITATION.search(line)
    ]
    assert not citing, (
        "these lines cite a document or folder the repository does not have; say "
        "what matters in the project's own words, or point to the README or "
        "docs/:\n" + "\n".join(citing)
    )


def test_every_cited_notes_has_a_bibliography_entry() -> None:
    """``notes 00N`` in a docstring resolves to an entry of docs/bibliography.md."""
    entries = set(
        re.findall(r"^### notes (\d{3})\b", BIBLIOGRAPHY.read_text("utf-8"), re.M)
    )
    cited: dict[str, str] = {}
    pointed: list[str] = []
    for path in _project_text_files():
        if path.suffix != ".py":
            continue
        text = path.read_text(encoding="utf-8")
        numbers = NOTES_CITATION.findall(text)
        for number in numbers:
            cited.setdefault(number, str(path.relative_to(ROOT)))
        if numbers and path.parent.name == "reference":
            if "docs/bibliography.md" not in (ast.get_docstring(ast.parse(text)) or ""):
                pointed.append(str(path.relative_to(ROOT)))
    assert cited, "no docstring cites the notes: NOTES_CITATION is out of date"
    missing = {n: where for n, where in cited.items() if n not in entries}
    assert not missing, (
        f"notes cited with no '### notes NNN' entry in {BIBLIOGRAPHY.name}: "
        f"{missing} (number: first file citing it)"
    )
    assert not pointed, (
        "reference modules that cite the notes without saying, in their opening "
        f"docstring, that docs/bibliography.md describes them: {pointed}"
    )


def test_distribution_installs_no_module() -> None:
    """No ``reference``, ``backends``, ... in site-packages: README, "Installing".

    The repository's folders import under short, common names; installed as
    top-level packages they would collide with any other of those names. So the
    wheel selects no file (hatchling's ``bypass-selection``: metadata and
    dependencies only), and an editable install adds the checkout to
    ``sys.path`` and nothing else. asv, which installs each commit it times,
    installs it the same way, from its own checkout of the commit.
    """
    tomllib = pytest.importorskip("tomllib", reason="reading TOML needs Python 3.11")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    build = config.get("tool", {}).get("hatch", {}).get("build", {})
    wheel = build.get("targets", {}).get("wheel", {})
    selecting = ("packages", "include", "only-include", "force-include", "sources")
    assert wheel.get("bypass-selection") is True, (
        f"the wheel target selects files ({wheel}); a wheel of nnspec must install "
        "no module, or its folders land in site-packages as top-level packages"
    )
    assert not [key for key in selecting if key in wheel or key in build], (
        f"pyproject selects files for the wheel: {build}"
    )
    assert wheel.get("dev-mode-dirs") == ["."], (
        f"an editable install must put the checkout on sys.path: {wheel}"
    )
    asv = (ROOT / "asv.conf.json").read_text(encoding="utf-8")
    assert "pip install -e {build_dir}" in asv, (
        "asv.conf.json must install each commit editable from its checkout: the "
        "wheel holds no module for the benchmarks to import"
    )


def _layout_block() -> str:
    """The fenced block of the README's "Layout" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```\n", 2)[1]


def test_readme_layout_names_only_what_exists() -> None:
    """Every folder and module the layout names is in the tree, where it says."""
    missing = []
    top = None
    for line in _layout_block().splitlines():
        head = line.split()[0] if line.strip() else ""
        if line[:1] not in (" ", "") and head.endswith("/"):
            top = ROOT / head
            missing += [head] if not top.is_dir() else []
        elif line.startswith("  ") and line[2] != " " and head.endswith("/"):
            missing += [f"{top.name}/{head}"] if not (top / head).is_dir() else []
        for module in re.findall(r"\b(\w+\.py)\b", line):
            if top is not None and not any(top.rglob(module)):
                missing.append(f"{top.name}/.../{module}")
    assert not missing, f"README's layout names what does not exist: {missing}"


def test_readme_layout_names_every_package() -> None:
    """Every folder of Python modules in the project is named in the layout."""
    block = _layout_block()
    folders = {
        path.parent.relative_to(ROOT)
        for path in ROOT.glob("*/**/*.py")
        if not any(part.startswith(".") or part == "tests" for part in path.parts)
        and path.parent != ROOT
    }
    unnamed = sorted(
        str(folder) for folder in folders if f"{folder.name}/" not in block
    )
    assert not unnamed, f"README's layout does not name: {unnamed}"
