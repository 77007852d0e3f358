"""The coverage of the notes: every reference component, its docstring, its checks.

Computed, never typed: the components are the ``__all__`` of every module of
the ``reference`` package, the contract ops come from ``backends.contract``, the
property families from ``properties.catalog`` (when it is importable) and the
verdicts from the results file. Each docstring is shown as text, with its
``.. math::`` blocks drawn by matplotlib's mathtext (a subset of TeX) as SVG
files beside the page; a block mathtext cannot draw stays as TeX source. The
sources the docstrings cite ("notes 000" ... "notes 004", the papers) are the
sections of ``docs/bibliography.md``, shown at the end of the page.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import pkgutil
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.model import LABELS, PRECEDENCE, Results, css_class

# --------------------------------------------------------------------------- #
# Docstrings: text and equations
# --------------------------------------------------------------------------- #


@dataclass
class Segment:
    """A run of docstring text, or one equation (``image`` is its SVG, if drawn)."""

    kind: str  # "text" or "math"
    text: str
    image: str | None = None


_MATH_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")
_INLINE_MATH = re.compile(r":math:`([^`]*)`")

#: TeX that mathtext lacks, rewritten to what it has.
_MATHTEXT_REWRITES: tuple[tuple[str, str], ...] = (
    (r"\mathrel{+}=", "+="),
    (r"\Big(", "("),
    (r"\Big)", ")"),
    (r"\big(", "("),
    (r"\big)", ")"),
    (r"\Bigl(", "("),
    (r"\Bigr)", ")"),
    (r"\top", "T"),
    (r"\dots", r"\ldots"),
    (r"\lVert", r"\Vert"),
    (r"\rVert", r"\Vert"),
    (r"\left", ""),
    (r"\right", ""),
    (r"\displaystyle", ""),
    (r"\mathbb{1}", r"\mathbf{1}"),
)

#: TeX to Unicode for inline ``:math:`...``` in running text (readable, not typeset).
_UNICODE: dict[str, str] = {
    r"\alpha": "α",
    r"\beta": "β",
    r"\gamma": "γ",
    r"\delta": "δ",
    r"\epsilon": "ε",
    r"\varepsilon": "ε",
    r"\eta": "η",
    r"\theta": "θ",
    r"\lambda": "λ",
    r"\mu": "μ",
    r"\rho": "ρ",
    r"\sigma": "σ",
    r"\tau": "τ",
    r"\phi": "φ",
    r"\Sigma": "Σ",
    r"\Lambda": "Λ",
    r"\partial": "∂",
    r"\nabla": "∇",
    r"\sum": "Σ",
    r"\prod": "Π",
    r"\sqrt": "√",
    r"\cdot": "·",
    r"\times": "×",
    r"\le": "≤",
    r"\leq": "≤",
    r"\ge": "≥",
    r"\geq": "≥",
    r"\ne": "≠",
    r"\neq": "≠",
    r"\approx": "≈",
    r"\infty": "∞",
    r"\in": "∈",
    r"\to": "→",
    r"\odot": "⊙",
    r"\quad": " ",
    r"\qquad": "  ",
    r"\,": " ",
    r"\;": " ",
}


def tex_to_unicode(tex: str) -> str:
    """A readable plain-text version of a short TeX formula."""
    text = tex
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", text)
    text = re.sub(
        r"\\(?:operatorname|mathrm|text|mathbf|mathcal|mathbb)\{([^{}]*)\}", r"\1", text
    )
    for command in sorted(_UNICODE, key=len, reverse=True):
        text = re.sub(re.escape(command) + r"(?![A-Za-z])", _UNICODE[command], text)
    text = text.replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", text).strip()


#: Commands mathtext knows by another name (matched as whole commands).
_MATHTEXT_RENAMES: dict[str, str] = {
    r"\le": r"\leq",
    r"\ge": r"\geq",
    r"\tfrac": r"\frac",
    r"\dfrac": r"\frac",
    r"\lvert": "|",
    r"\rvert": "|",
}


def for_mathtext(tex: str) -> str:
    """``tex`` rewritten into the subset matplotlib's mathtext draws."""
    text = " ".join(tex.split())
    for old, new in _MATHTEXT_REWRITES:
        text = text.replace(old, new)
    for old, new in _MATHTEXT_RENAMES.items():
        text = re.sub(re.escape(old) + r"(?![A-Za-z])", lambda _m, new=new: new, text)
    text = re.sub(r"\\frac\s*(\w)\s*(\w)", r"\\frac{\1}{\2}", text)  # \frac12
    # \text{a b} -> \mathrm{a\ b}: mathtext has no \text and drops plain spaces.
    return re.sub(
        r"\\text\{([^{}]*)\}",
        lambda m: r"\mathrm{" + m.group(1).replace(" ", r"\ ") + "}",
        text,
    )


class MathRenderer:
    """Draws equations to SVG files in ``directory`` (``None``: keep them as TeX)."""

    def __init__(self, directory: Path | None, prefix: str = "math") -> None:
        self.directory = directory
        self.prefix = prefix
        self.drawn = 0
        self.failed = 0

    def render(self, tex: str) -> str | None:
        """The path (relative to the pages) of the SVG for ``tex``, or ``None``."""
        if self.directory is None:
            return None
        source = for_mathtext(tex)
        name = hashlib.sha1(source.encode()).hexdigest()[:16] + ".svg"
        target = self.directory / name
        if target.exists():
            self.drawn += 1
        else:
            try:
                import matplotlib

                matplotlib.use("Agg")
                from matplotlib import mathtext

                buffer = io.BytesIO()
                mathtext.math_to_image(f"${source}$", buffer, dpi=110, format="svg")
            except Exception:  # mathtext lacks this TeX: the page shows the source
                self.failed += 1
                return None
            self.directory.mkdir(parents=True, exist_ok=True)
            target.write_bytes(buffer.getvalue())
            self.drawn += 1
        return f"{self.prefix}/{name}"


def split_equations(tex: str) -> list[str]:
    """A display block's lines (``\\\\``-separated, alignment marks dropped)."""
    body = re.sub(r"\\begin\{(aligned|align\*?|gathered|split)\}", "", tex)
    body = re.sub(r"\\end\{(aligned|align\*?|gathered|split)\}", "", body)
    equations = []
    for paragraph in re.split(r"\n\s*\n", body):
        for line in re.split(r"\\\\", paragraph):
            if line.strip():
                equations.append(line.replace("&", " ").strip())
    return equations


def docstring_segments(doc: str, renderer: MathRenderer) -> list[Segment]:
    """Split a docstring into text runs and equations (drawn where possible)."""
    segments: list[Segment] = []
    text_lines: list[str] = []
    lines = doc.splitlines()
    index = 0

    def flush_text() -> None:
        text = "\n".join(text_lines).strip("\n")
        if text.strip():
            segments.append(Segment("text", plain_text(text)))
        text_lines.clear()

    while index < len(lines):
        match = _MATH_DIRECTIVE.match(lines[index])
        if not match:
            text_lines.append(lines[index])
            index += 1
            continue
        indent = len(match.group(1))
        block = [match.group(2)] if match.group(2).strip() else []
        index += 1
        while index < len(lines):
            line = lines[index]
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            block.append(line)
            index += 1
        flush_text()
        tex = textwrap.dedent("\n".join(block)).strip()
        for equation in split_equations(tex) or [tex]:
            segments.append(Segment("math", equation, renderer.render(equation)))
    flush_text()
    return segments


def _inline(match: re.Match[str]) -> str:
    return tex_to_unicode(match.group(1))


_ROLE = re.compile(r":(?:func|class|mod|data|attr|meth|obj|ref|py:\w+):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str) -> str:
    """reStructuredText markup read as plain text: roles, literals, inline math."""
    text = _INLINE_MATH.sub(_inline, text)
    text = _ROLE.sub(r"\1", text)
    return _LITERAL.sub(r"\1", text)


# --------------------------------------------------------------------------- #
# Components
# --------------------------------------------------------------------------- #

_NOTES = re.compile(r"notes? (\d{3})")


@dataclass
class Component:
    """One name of a reference module's ``__all__`` (a backward joins its forward)."""

    name: str
    module: str
    kind: str
    signature: str
    summary: str
    segments: list[Segment]
    notes: list[str]
    in_contract: bool = False
    families: list[str] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)
    backward: Component | None = None

    @property
    def anchor(self) -> str:
        return f"c-{self.module}-{self.name}"


@dataclass
class ModuleDoc:
    name: str
    title: str
    segments: list[Segment]
    components: list[Component]
    error: str | None = None


@dataclass
class Source:
    """One entry of the bibliography: ``key`` "000" for notes 000, else ""."""

    key: str
    title: str
    text: str


#: What "notes 000" ... "notes 004" and the papers are (the docstrings cite them).
BIBLIOGRAPHY = Path(__file__).resolve().parents[1] / "docs" / "bibliography.md"
_ENTRY = re.compile(r"^###? (.+)$", flags=re.M)


def bibliography(path: Path = BIBLIOGRAPHY) -> list[Source]:
    """The ``##``/``###`` sections of ``docs/bibliography.md``, as plain text."""
    text = path.read_text(encoding="utf-8")
    headings = list(_ENTRY.finditer(text))
    introduction = text[: headings[0].start() if headings else len(text)]
    introduction = re.sub(r"^# .*\n", "", introduction).strip()
    sources = [Source("", "About these sources", introduction)] if introduction else []
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        end = following.start() if following else len(text)
        key = _NOTES.match(heading.group(1).lower())
        sources.append(
            Source(
                key=key.group(1) if key else "",
                title=heading.group(1).strip(),
                text=text[heading.end() : end].strip(),
            )
        )
    return sources


@dataclass
class Coverage:
    modules: list[ModuleDoc]
    contract_missing: list[str]
    catalog_note: str | None
    backends: list[str]
    equations_drawn: int = 0
    equations_as_tex: int = 0
    sources: list[Source] = field(default_factory=list)
    sources_note: str | None = None

    @property
    def components(self) -> list[Component]:
        return [c for module in self.modules for c in module.components]


def _kind(obj: Any) -> str:
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "constant"


def _signature(name: str, obj: Any) -> str:
    if not callable(obj):
        return f"{name} = {obj!r}"[:200]
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def catalog_families() -> tuple[dict[str, list[str]], str | None]:
    """op name -> the property families the catalog gives it, and a note if none."""
    try:
        catalog = importlib.import_module("properties.catalog")
    except Exception as error:
        return (
            {},
            f"properties.catalog not importable ({type(error).__name__}: {error})",
        )
    entries = list(getattr(catalog, "CATALOG", ()))
    families: dict[str, list[str]] = {}
    for entry in entries:
        family = getattr(entry, "family", None)
        families.setdefault(entry.name, [])
        if isinstance(family, str) and family not in families[entry.name]:
            families[entry.name].append(family)
    return families, None if entries else "properties.catalog has no entries"


def _verdicts(results: Results | None) -> dict[str, dict[str, str]]:
    """op -> backend -> the overall verdict over every family."""
    if results is None:
        return {}
    counts: dict[tuple[str, str], Counter[str]] = {}
    for check in results.checks:
        if check.op:
            counts.setdefault((check.op, check.column), Counter())[check.outcome] += 1
    verdicts: dict[str, dict[str, str]] = {}
    for (op, backend), counter in counts.items():
        status = next((o for o in PRECEDENCE if counter[o]), "skipped-other")
        verdicts.setdefault(op, {})[backend] = status
    return verdicts


def collect(
    results: Results | None,
    math_directory: Path | None,
    package: str = "reference",
    modules: list[str] | None = None,
) -> Coverage:
    """Every component of ``package`` (or of ``modules`` in it) with its coverage."""
    renderer = MathRenderer(math_directory)
    try:
        from backends.contract import BACKWARD_OPERATIONS, OPERATIONS

        contract_ops = set(OPERATIONS) | set(BACKWARD_OPERATIONS)
    except Exception:
        contract_ops = set()
    families, catalog_note = catalog_families()
    verdicts = _verdicts(results)
    if modules is None:
        root = importlib.import_module(package)
        modules = sorted(
            info.name
            for info in pkgutil.iter_modules(root.__path__)
            if not info.name.startswith("_")
        )
    documents: list[ModuleDoc] = []
    seen: set[str] = set()
    for short in modules:
        qualified = f"{package}.{short}"
        try:
            module = importlib.import_module(qualified)
        except Exception as error:
            documents.append(
                ModuleDoc(short, "", [], [], error=f"{type(error).__name__}: {error}")
            )
            continue
        doc = inspect.getdoc(module) or ""
        names = list(getattr(module, "__all__", None) or [])
        if not names:
            names = [
                n
                for n, v in vars(module).items()
                if not n.startswith("_")
                and inspect.isfunction(v)
                and v.__module__ == qualified
            ]
        components: dict[str, Component] = {}
        for name in names:
            obj = getattr(module, name, None)
            component_doc = (inspect.getdoc(obj) or "") if callable(obj) else ""
            component = Component(
                name=name,
                module=short,
                kind=_kind(obj),
                signature=_signature(name, obj),
                summary=component_doc.strip().splitlines()[0]
                if component_doc.strip()
                else "",
                segments=docstring_segments(component_doc, renderer),
                notes=sorted(set(_NOTES.findall(component_doc))),
                in_contract=name in contract_ops,
                families=families.get(name, []),
                verdicts=verdicts.get(name, {}),
            )
            components[name] = component
            seen.add(name)
        for name in list(components):
            forward = name.removesuffix("_backward")
            if name.endswith("_backward") and forward in components:
                components[forward].backward = components.pop(name)
        documents.append(
            ModuleDoc(
                name=short,
                title=doc.strip().splitlines()[0] if doc.strip() else short,
                segments=docstring_segments(doc, renderer),
                components=list(components.values()),
            )
        )
    backends = sorted({b for per_op in verdicts.values() for b in per_op})
    if results is not None:
        backends = [column.id for column in results.backends] or backends
    try:
        sources, sources_note = bibliography(), None
    except OSError as error:  # a copy of the project without its docs/
        sources, sources_note = [], f"{BIBLIOGRAPHY.name} not readable: {error}"
    return Coverage(
        modules=documents,
        contract_missing=sorted(contract_ops - seen),
        catalog_note=catalog_note,
        backends=backends,
        equations_drawn=renderer.drawn,
        equations_as_tex=renderer.failed,
        sources=sources,
        sources_note=sources_note,
    )


def verdict_label(status: str | None) -> str:
    """A component's verdict on a backend; "not checked" when no check ran it."""
    return LABELS.get(status, status) if status else "not checked"


def verdict_css(status: str | None) -> str:
    return css_class(status) if status else "s-unchecked"
