"""Fixtures of the report's tests: the fixed data files, a site built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reports.build import BuildOutcome, build

DATA = Path(__file__).resolve().parent / "data"


@dataclass
class Element:
    tag: str
    attributes: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)


class _Collector(HTMLParser):
    """Every element with its attributes and its text (enough to check a page)."""

    VOID = frozenset({"br", "img", "meta", "link", "hr", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.stack: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if self.stack:
            self.stack[-1].children.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                break

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element.text += data


def parse(html: str) -> list[Element]:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.elements


def find(
    elements: list[Element], tag: str | None = None, **attributes: str
) -> list[Element]:
    """Elements of ``tag`` having ``attributes`` (``data_x`` stands for data-x)."""
    wanted = {k.replace("_", "-"): v for k, v in attributes.items()}
    return [
        e
        for e in elements
        if (tag is None or e.tag == tag)
        and all(e.attributes.get(k) == v for k, v in wanted.items())
    ]


@dataclass
class Site:
    outcome: BuildOutcome
    out: Path

    def html(self, page: str) -> str:
        return (self.out / f"{page}.html").read_text(encoding="utf-8")

    def elements(self, page: str) -> list[Element]:
        return parse(self.html(page))


@pytest.fixture(scope="session")
def mixed_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The site of a run with passes, failures, skips, a timeout, a broken backend."""
    out = tmp_path_factory.mktemp("mixed-site")
    outcome = build(
        DATA / "results_mixed.json",
        out,
        bench_path=DATA / "bench.json",
        asv_html=DATA / "asv_html",
        limits_path=DATA / "limits.json",
        reference_modules=["activations"],
    )
    return Site(outcome, out)
