"""Read the weekly research report's ``PORTFOLIO REBALANCING`` section (SPEC §6).

Pure: stdlib only, no clock reads (the report's date is an argument).

Format
------
The proposal's example is the canonical shape::

    ## PORTFOLIO REBALANCING

    ### EXITS (Free up capital for new opportunities)
    - **ENPH**: EXIT - Held 18 days, catalyst passed, up 12% → Lock in gains
    - **AMD**: TRIM 50% - Position grew to 18% of portfolio → Reduce concentration

    ### NEW ENTRIES (Replace exits)
    - **TSLA**: BUY - New catalyst: Model 3 refresh (Nov 15)

    ### HOLDS
    - **MSFT**: HOLD - thesis intact

* The section starts at a level 1-3 heading containing "portfolio rebalancing"
  (any case, emoji and other words around it allowed) and ends at the next
  heading of the same or a higher level, except that a heading which *starts*
  with EXITS / TRIMS / NEW ENTRIES / ENTRIES / BUYS / HOLDS continues it (a
  report that flattened its subsections to ``## EXITS`` must not lose them).
  Several rebalancing sections in one file are read as one.
* Deeper headings (and whole-line bold pseudo-headings) inside the section name
  the ``section`` of the lines under them: ``exits``, ``entries``, ``holds`` or
  ``other``.
* Code fences: a fence without an info string or with ``markdown``/``md`` is
  transparent (LLMs like to wrap their whole answer in one); the content of any
  other fence (```` ```bash ````, ```` ```json ````) is skipped.
* A recommendation line is ``SYMBOL <sep> ACTION [N%] [<sep>] reason``:
  optional bullet (``-`` ``*`` ``+`` ``•`` ``–`` ``—`` or ``1.``/``1)``),
  blockquote and checkbox; the symbol bold, in backticks, ``$``-prefixed or bare
  (several symbols may share a line: ``- **MSFT**, **AAPL**: HOLD``), optionally
  followed by a parenthesised company name; separator ``:`` ``—`` ``–`` ``-``
  (or just a space after a bold/``$`` symbol); the action in any case. Emoji,
  zero-width characters, BOM, CRLF/CR line ends, ``**`` inside the line and
  runs of whitespace are ignored.
* ``reason`` is the text after the action (and after TRIM's percentage), with
  the leading separator removed and the trailing ``→ ...`` kept.
* ``weight`` (BUY lines only, as a percent: ``Decimal("5")``): ``(5% weight)``,
  ``5% allocation``, ``5% of portfolio``, ``weight 5%``, ``weight: 5%``,
  ``allocation 5%``, ``position size 5%``. On EXIT/TRIM/HOLD lines a stated
  weight describes the current position, not an instruction, so it stays in the
  reason and ``weight`` is ``None``.
* ``catalyst_date``: ``Nov 15``, ``Nov. 15th``, ``November 15``, ``Nov 15, 2026``,
  ``11/15``, ``11/15/2026``, ``2026-11-15``. A date inside parentheses wins over
  one outside them; otherwise the last date on the line wins. A date without a
  year is the earliest such date on or after ``report_date`` minus
  :data:`DATE_LOOKBACK_DAYS` (62): a December report's "Jan 10" is next
  January, a March report's "Feb 20" is this February (a passed catalyst).
  Lower-case month names ("may 20") are prose, not dates.

What is rejected (:class:`ReportError`, naming the line)
---------------------------------------------------------
A rejected report must execute nothing, so everything that cannot be read
safely is an error rather than a guess:

* an unknown action. The vocabulary is the proposal's: EXIT, TRIM N%, HOLD,
  BUY. SELL, CLOSE, REDUCE, ADD, ... are *not* read as synonyms: "SELL" could
  mean all or part, "REDUCE" has no size, and a research generator that drifts
  from the format should be noticed, not second-guessed. A line is taken to
  name a symbol (and so must carry a known action) when its symbol is a
  ticker and is bold/``$``-marked, or when the word after it is upper-case or
  a trading verb; other ``Word: text`` bullets are prose and are ignored;
* a TRIM without a percentage directly after it (``TRIM 50%``, ``TRIM 50 %``,
  ``TRIM by 50%``, ``TRIM (50%)``), or with 0% or more than 100%;
* a percentage directly after EXIT (other than 100%), HOLD or BUY that is not a
  weight (``BUY 5%``: of what?);
* a symbol that is not a ticker (``^[A-Z]{1,5}([.-][A-Z]{1,2})?$`` after
  removing ``$``/bold) when the line carries a known action and the symbol is
  upper-case or ``$``-marked (``- Rationale: hold ...`` stays prose);
* a weight of 0% or above 100%, two different weights on one BUY line;
* a date-shaped token that is not a calendar date (``Feb 30``, ``2026-13-01``);
* the same symbol twice with different instructions (EXIT vs HOLD, TRIM 50% vs
  TRIM 30%, BUY with different weights or catalyst dates): the error names both
  lines. The same instruction twice (a symbol listed under EXITS and again in
  a summary) is a harmless duplicate: the first line is kept;
* a Markdown table row inside the section with an action in a cell: tables
  are not a supported format and silently ignoring one would drop exits.

A report without a rebalancing section has no recommendations; that is not an
error (``has_rebalancing_section`` tells the caller).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from rebalancerd.domain.model import Action, ResearchAdvice
from rebalancerd.domain.report_dates import (
    DATE_LOOKBACK_DAYS,
    catalyst_date,
    resolve_month_day,
)
from rebalancerd.errors import RebalancerdError

__all__ = [
    "DATE_LOOKBACK_DAYS",
    "TICKER_RE",
    "ParsedReport",
    "Recommendation",
    "ReportError",
    "parse_report",
    "resolve_month_day",
]

#: A ticker after ``$`` and bold are removed: ``AMD``, ``BRK.B``, ``BF-B``.
TICKER_RE = re.compile(r"^[A-Z]{1,5}(?:[.-][A-Z]{1,2})?$")


_HUNDRED = Decimal(100)
_MAX_QUOTE = 160

_ACTIONS: dict[str, Action] = {a.value: a for a in Action}

#: Words that show a line was meant as a trade instruction even in lower case.
_TRADE_VERBS = frozenset(
    {
        "sell", "selling", "close", "reduce", "add", "cover", "short", "accumulate",
        "increase", "decrease", "keep", "maintain", "liquidate", "cut", "rebalance",
        "replace", "exits", "exiting", "trims", "trimming", "holding", "buys", "buying",
    }
)  # fmt: skip


class ReportError(RebalancerdError):
    """A research report that cannot be read safely; nothing of it may execute.

    ``str()`` reads ``[source: ]line N: message``; ``line`` is 1-based.
    """

    def __init__(self, message: str, *, line: int | None = None, source: str | None = None):
        self.message = message
        self.line = line
        self.source = source
        parts = [p for p in (source, None if line is None else f"line {line}") if p]
        super().__init__(": ".join([*parts, message]))


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One symbol's instruction read from the report."""

    symbol: str
    action: Action
    #: TRIM only: the fraction of the position to sell (50% → Decimal("0.5")).
    fraction: Decimal | None
    reason: str
    #: BUY only: the stated target weight as a percent (5% → Decimal("5")).
    weight: Decimal | None
    catalyst_date: date | None
    #: 1-based line number in the report text.
    line: int
    #: "exits", "entries", "holds" or "other" (the subsection it was found in).
    section: str

    def to_advice(self, report_id: int | None) -> ResearchAdvice:
        return ResearchAdvice(
            symbol=self.symbol,
            action=self.action,
            fraction=self.fraction,
            reason=self.reason,
            report_id=report_id,
            catalyst_date=self.catalyst_date,
            weight=self.weight,
        )

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form (Decimals and dates as strings)."""
        return {
            "symbol": self.symbol,
            "action": self.action.value,
            "fraction": None if self.fraction is None else str(self.fraction),
            "reason": self.reason,
            "weight": None if self.weight is None else str(self.weight),
            "catalyst_date": None if self.catalyst_date is None else self.catalyst_date.isoformat(),
            "line": self.line,
            "section": self.section,
        }

    def describe(self) -> str:
        """Short form for messages: ``TRIM 50%``, ``BUY (5% weight, catalyst 2026-11-15)``."""
        text = self.action.value
        if self.fraction is not None:
            text += f" {_fmt_pct(self.fraction * _HUNDRED)}%"
        extras = []
        if self.action is Action.BUY and self.weight is not None:
            extras.append(f"{_fmt_pct(self.weight)}% weight")
        if self.action is Action.BUY and self.catalyst_date is not None:
            extras.append(f"catalyst {self.catalyst_date.isoformat()}")
        return f"{text} ({', '.join(extras)})" if extras else text


@dataclass(frozen=True, slots=True)
class ParsedReport:
    recommendations: tuple[Recommendation, ...]
    has_rebalancing_section: bool

    def by_symbol(self) -> dict[str, Recommendation]:
        return {r.symbol: r for r in self.recommendations}

    def of(self, action: Action) -> tuple[Recommendation, ...]:
        return tuple(r for r in self.recommendations if r.action is action)

    def to_advice(self, report_id: int | None) -> dict[str, ResearchAdvice]:
        """Per-symbol advice for the rule engine, tagged with the stored report's id."""
        return {r.symbol: r.to_advice(report_id) for r in self.recommendations}


# --------------------------------------------------------------------------- text clean-up

_KEYCAP_RE = re.compile("[0-9#*]\ufe0f?\u20e3")
_DROP = frozenset({"\ufe0e", "\ufe0f", "\u20e3"})


def _strip_noise(text: str) -> str:
    """Emoji and other pictographs become spaces; zero-width characters vanish."""
    text = _KEYCAP_RE.sub(" ", text)
    out: list[str] = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        if ch in _DROP:
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cf", "Cs", "Co", "Cn"):
            continue
        if cat == "So" or (cat == "Sk" and ord(ch) >= 0x1F3FB):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _fmt_pct(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _quote(raw: str) -> str:
    text = raw.strip()
    if len(text) > _MAX_QUOTE:
        text = text[: _MAX_QUOTE - 1] + "…"
    return f"'{text}'"


# --------------------------------------------------------------------------- line shapes

_FENCE_RE = re.compile(r"^\s{0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")
_HEADING_RE = re.compile(r"^\s{0,3}(?P<hashes>#{1,6})(?:\s+(?P<text>.*?))?(?:\s+#+)?\s*$")
_BULLET_RE = re.compile(
    r"^\s*(?:>\s*)*(?:(?P<bullet>[-*+•–—·]|[0-9]{1,3}[.)])(?=\s))?\s*(?:\[[ xX]\]\s+)?(?P<body>.*)$"
)
_BOLD_LINE_RE = re.compile(r"^(?:\*\*|__)(?P<text>[^*_]+)(?:\*\*|__):?$")
_SYM = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_SHAPE_RE = re.compile(
    rf"^(?P<syms>\$?{_SYM}(?:\s*(?:,|&|\band\b)\s*\$?{_SYM})*)"
    r"\s*(?:\((?P<paren>[^)]*)\))?"
    r"\s*(?P<sep>:|—|–|-|\s)\s*"
    r"(?P<word>[A-Za-z]+)\b(?P<rest>.*)$"
)
_SYM_SPLIT_RE = re.compile(r"\s*(?:,|&|\band\b)\s*")
_PCT_AFTER_ACTION_RE = re.compile(
    r"^\s*\(?\s*(?:by\s+)?(?P<num>[0-9]+(?:\.[0-9]+)?)\s*%\s*\)?", re.IGNORECASE
)
_WEIGHT_WORDS_RE = re.compile(
    r"^\s*(?:weight|allocation|of\s+(?:the\s+)?(?:portfolio|equity))\b", re.IGNORECASE
)
_NUM = r"[0-9]+(?:\.[0-9]+)?"
_WEIGHT_RE = re.compile(
    rf"(?P<a>{_NUM})\s*%\s*(?:weight|allocation|of\s+(?:the\s+)?(?:portfolio|equity))\b"
    rf"|\b(?:weight|allocation|position\s+size)\s*(?:of|:|=)?\s*(?P<b>{_NUM})\s*%",
    re.IGNORECASE,
)
_LEADING_SEP_RE = re.compile(r"^[\s\-—–:.,;]+")
_SECTION_WORD_RE = re.compile(
    r"\b(?P<w>EXITS?|TRIMS?|SELLS?|NEW\s+ENTR\w*|ENTR\w*|NEW\s+POSITIONS?|BUYS?|HOLDS?|KEEPS?)\b"
)
_CONTINUES_RE = re.compile(r"^(?:EXITS?|TRIMS?|NEW\s+ENTR\w*|ENTR\w*|BUYS?|HOLDS?)\b")
_REBALANCING_RE = re.compile(r"\bPORTFOLIO\W+REBALANCING\b")
_TABLE_ACTION_RE = re.compile(r"^(?:EXIT|TRIM|HOLD|BUY)\b")

# --------------------------------------------------------------------------- parser


def _classify(plain_heading: str) -> str:
    m = _SECTION_WORD_RE.search(plain_heading)
    if m is None:
        return "other"
    word = m["w"]
    if word.startswith(("EXIT", "TRIM", "SELL")):
        return "exits"
    if word.startswith("HOLD") or word.startswith("KEEP"):
        return "holds"
    return "entries"


def _is_pseudo_heading(bold_text: str) -> bool:
    """A whole-line bold text used as a heading: ``**NEW ENTRIES**``, ``**Summary**``."""
    plain = _plain(bold_text).rstrip(":").strip()
    return _CONTINUES_RE.match(plain) is not None or not any(c in plain for c in ":—–-")


def _plain(text: str) -> str:
    """Heading text for matching: no emoji, no markup, single spaces, upper case."""
    text = _strip_noise(text).replace("*", " ").replace("_", " ").replace("`", " ")
    return _collapse(text).upper()


class _Parser:
    def __init__(self, text: str, report_date: date, source: str | None):
        self.report_date = report_date
        self.source = source
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if text.startswith("\ufeff"):
            text = text[1:]
        self.lines = text.split("\n")
        self.recs: list[Recommendation] = []
        self.seen: dict[str, Recommendation] = {}

    def error(self, message: str, lineno: int) -> ReportError:
        return ReportError(message, line=lineno, source=self.source)

    def run(self) -> ParsedReport:
        found_section = False
        section_level: int | None = None  # None: outside a rebalancing section
        subsection = "other"
        fence: str | None = None
        fence_transparent = True

        for lineno, raw in enumerate(self.lines, start=1):
            fm = _FENCE_RE.match(raw)
            if fence is not None:
                if (
                    fm is not None
                    and fm["fence"][0] == fence[0]
                    and len(fm["fence"]) >= len(fence)
                    and not fm["info"]
                ):
                    fence = None
                    continue
                if not fence_transparent or fm is not None:
                    continue  # inside a code fence, or a fence line nested in a transparent one
            elif fm is not None:
                fence = fm["fence"]
                fence_transparent = fm["info"].lower() in ("", "markdown", "md")
                continue

            hm = _HEADING_RE.match(raw)
            if hm is not None:
                level = len(hm["hashes"])
                plain = _plain(hm["text"] or "")
                if level <= 3 and _REBALANCING_RE.search(plain):
                    found_section = True
                    section_level = level
                    subsection = "other"
                    continue
                if section_level is None:
                    continue
                if level <= section_level:
                    if _CONTINUES_RE.match(plain):
                        subsection = _classify(plain)
                        continue
                    section_level = None
                    continue
                subsection = _classify(plain)
                continue

            if section_level is None:
                continue
            bold = _BOLD_LINE_RE.match(_strip_noise(raw).strip())
            if bold is not None and _is_pseudo_heading(bold["text"]):
                subsection = _classify(_plain(bold["text"]))
                continue
            self.line(raw, lineno, subsection)

        return ParsedReport(tuple(self.recs), found_section)

    def line(self, raw: str, lineno: int, subsection: str) -> None:
        text = _strip_noise(raw)
        if text.lstrip().startswith("|"):
            self.table_row(raw, text, lineno)
            return
        bm = _BULLET_RE.match(text)
        if bm is None:  # pragma: no cover - the pattern matches every string
            return
        body = bm["body"].lstrip()
        marked = body.startswith(("**", "__", "$", "`"))
        cleaned = _collapse(
            body.replace("**", "").replace("__", "").replace("`", "").replace("*", "")
        )
        m = _SHAPE_RE.match(cleaned)
        if m is None:
            return
        tokens = [t for t in _SYM_SPLIT_RE.split(m["syms"]) if t]
        if m["sep"].isspace() and not marked:
            return  # "- Market update ..." is prose
        dollar = any(t.startswith("$") for t in tokens)
        symbols = [t.removeprefix("$") for t in tokens]
        intent = dollar or all(s == s.upper() and any(c.isalpha() for c in s) for s in symbols)
        if not intent:
            return  # "- Rationale: hold ...", "- Note: ..."
        word = m["word"]
        action = _ACTIONS.get(word.upper())
        tickers = all(TICKER_RE.match(s) for s in symbols)
        if action is None:
            verb = (word.isupper() and len(word) > 1) or word.lower() in _TRADE_VERBS
            if tickers and (marked or dollar or verb):
                raise self.error(
                    f"unknown action {word!r} for {', '.join(symbols)} "
                    f"(expected EXIT, TRIM N%, HOLD or BUY): {_quote(raw)}",
                    lineno,
                )
            return
        for s in symbols:
            if not TICKER_RE.match(s):
                raise self.error(f"not a ticker symbol: {s!r}: {_quote(raw)}", lineno)
        self.recommendation(raw, lineno, subsection, symbols, action, m["rest"])

    def table_row(self, raw: str, text: str, lineno: int) -> None:
        cells = [_plain(c) for c in text.strip().strip("|").split("|")]
        if any(_TABLE_ACTION_RE.match(c) for c in cells):
            raise self.error(
                "recommendations in a table are not supported; write one "
                f"'- **SYMBOL**: ACTION - reason' line per symbol: {_quote(raw)}",
                lineno,
            )

    def recommendation(
        self,
        raw: str,
        lineno: int,
        subsection: str,
        symbols: list[str],
        action: Action,
        rest: str,
    ) -> None:
        fraction: Decimal | None = None
        pm = _PCT_AFTER_ACTION_RE.match(rest)
        is_weight = pm is not None and _WEIGHT_WORDS_RE.match(rest[pm.end() :]) is not None
        if action is Action.TRIM:
            if pm is None:
                raise self.error(f"TRIM without a percentage: {_quote(raw)}", lineno)
            pct = Decimal(pm["num"])
            if not (0 < pct <= _HUNDRED):
                raise self.error(
                    f"TRIM percentage must be above 0% and at most 100%, got {pm['num']}%: "
                    f"{_quote(raw)}",
                    lineno,
                )
            fraction = pct / _HUNDRED
            rest = rest[pm.end() :]
        elif pm is not None and not is_weight:
            pct = Decimal(pm["num"])
            if action is Action.EXIT and pct == _HUNDRED:
                rest = rest[pm.end() :]
            elif action is Action.EXIT:
                raise self.error(
                    f"EXIT with a percentage ({pm['num']}%); write TRIM N% for a partial exit: "
                    f"{_quote(raw)}",
                    lineno,
                )
            else:
                raise self.error(
                    f"ambiguous percentage after {action.value} ({pm['num']}%); "
                    f"write '({pm['num']}% weight)': {_quote(raw)}",
                    lineno,
                )
        reason = _LEADING_SEP_RE.sub("", rest).strip()

        weight: Decimal | None = None
        if action is Action.BUY:
            weights = {Decimal(w["a"] or w["b"]) for w in _WEIGHT_RE.finditer(reason)}
            if len(weights) > 1:
                shown = ", ".join(f"{_fmt_pct(w)}%" for w in sorted(weights))
                raise self.error(f"several weights ({shown}): {_quote(raw)}", lineno)
            if weights:
                weight = weights.pop()
                if not (0 < weight <= _HUNDRED):
                    raise self.error(
                        f"weight must be above 0% and at most 100%, got {_fmt_pct(weight)}%: "
                        f"{_quote(raw)}",
                        lineno,
                    )
        try:
            catalyst = catalyst_date(reason, self.report_date)
        except ValueError as exc:
            raise self.error(
                f"not a calendar date: {exc.args[0]!r}: {_quote(raw)}", lineno
            ) from None

        for symbol in symbols:
            rec = Recommendation(
                symbol=symbol,
                action=action,
                fraction=fraction,
                reason=reason,
                weight=weight,
                catalyst_date=catalyst,
                line=lineno,
                section=subsection,
            )
            self.add(rec)

    def add(self, rec: Recommendation) -> None:
        prev = self.seen.get(rec.symbol)
        if prev is None:
            self.seen[rec.symbol] = rec
            self.recs.append(rec)
            return
        if _same_instruction(prev, rec):
            return  # a harmless duplicate: the first line is kept
        raise self.error(
            f"conflicting recommendations for {rec.symbol}: {prev.describe()} on line "
            f"{prev.line}, {rec.describe()} on line {rec.line}",
            rec.line,
        )


def _same_instruction(a: Recommendation, b: Recommendation) -> bool:
    if a.action is not b.action or a.fraction != b.fraction:
        return False
    if a.action is Action.BUY:
        return a.weight == b.weight and a.catalyst_date == b.catalyst_date
    return True


def parse_report(text: str, *, report_date: date, source: str | None = None) -> ParsedReport:
    """Read the recommendations of a research report.

    ``report_date`` anchors dates written without a year; ``source`` (a file
    name, ``command:...``) prefixes error messages. Raises :class:`ReportError`.
    """
    return _Parser(text, report_date, source).run()
