"""XML from outside, parsed safely, with the line of every element kept for messages.

Why defusedxml: a statement comes from a bank portal through an operator's hands, so
the file is untrusted. The parser refuses any DTD (so no entity can be declared: no
billion laughs, no external entity reading local files or URLs, XXE) and is expat
underneath (no network, no XInclude). Files above :data:`MAX_BYTES` are refused before
parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

MAX_BYTES = 20 * 1024 * 1024


class XmlRefused(ValueError):
    """Not well-formed, too large, or with a DTD/entity: the message says which, where."""


class _LineBuilder(TreeBuilder):
    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[int, int] = {}
        self.parser: DefusedXMLParser | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        element = super().start(tag, attrs)
        if self.parser is not None:
            self.lines[id(element)] = self.parser.parser.CurrentLineNumber
        return element


@dataclass(frozen=True, slots=True)
class Document:
    root: Element
    _lines: dict[int, int]

    def line(self, element: Element) -> int:
        return self._lines.get(id(element), 0)


def parse(data: bytes) -> Document:
    if len(data) > MAX_BYTES:
        raise XmlRefused(f"the file is larger than {MAX_BYTES} bytes")
    builder = _LineBuilder()
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    builder.parser = parser
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException as exc:
        line = parser.parser.CurrentLineNumber
        kind = type(exc).__name__.replace("Forbidden", "").lower() or "dtd"
        raise XmlRefused(
            f"line {line}: a {kind} declaration is refused (no DTDs or entities in bank files)"
        ) from None
    except ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":", 1)[0]
        raise XmlRefused(f"line {line}, column {column}: {reason}") from None
    return Document(root, builder.lines)
