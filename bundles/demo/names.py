"""Fictional tickers and company names, drawn from syllables (real listings are skipped)."""
from __future__ import annotations

_SYLLABLES = ("ab", "ar", "bel", "bra", "cor", "dal", "den", "el", "fal", "gar", "hel", "jar",
              "kel", "lan", "mar", "nor", "or", "pal", "quin", "ros", "sel", "tal", "ul", "val",
              "wex", "zan", "ver", "tor", "lyn", "cas", "dor", "fen", "gil", "hal", "ix", "jun",
              "kor", "lum", "mon", "nex", "ost", "pry", "rav", "syl", "tern", "vox", "bri",
              "cam", "dex", "fro", "gen", "hex", "tri", "mer", "sto", "plu", "ven", "qua")
# Real listings the name generator happens to produce: skipped to keep the demo fictional.
_AVOID = frozenset({"BRDR", "CMCM", "CSTR", "DLTR", "DXTR", "FLTR", "GLBR", "GLDX", "JRVR",
                    "MRDN", "NXGN", "PLMR", "STKL", "ULTR", "VRDN"})
_SUFFIXES = {
    "large": ("Corp", "Inc.", "Holdings Inc.", "Group Inc.", "Technologies Inc.", "Industries"),
    "mid": ("Inc.", "Corp", "Systems Inc.", "Brands Inc.", "Energy Corp", "Financial Corp"),
    "small": ("Inc.", "Corp", "Labs Inc.", "Networks Inc."),
    "penny": ("Therapeutics Inc.", "Mining Corp", "Biosciences Inc.", "Holdings Inc.",
              "Technologies Corp", "Resources Ltd"),
    "adr": ("Ltd ADR", "PLC ADR", "Group Ltd ADR"),
}


class NameGenerator:
    """``(ticker, name)`` of a new fictional company: a 4-letter ticker not yet ``used`` (nor
    its warrant ``<ticker>W``), never one of the real listings in :data:`_AVOID`.

    ``rng`` is the generator's own stream, so the avoid list moves no prices.
    """

    def __init__(self, rng, reserved=()):
        self.rng = rng
        self.used: set[str] = set(reserved) | set(_AVOID)

    def __call__(self, role: str) -> tuple[str, str]:
        names = self.rng
        while True:
            word = names.choice(_SYLLABLES) + names.choice(_SYLLABLES)
            if names.random() < 0.3:
                word += names.choice(_SYLLABLES)
            letters = word[0] + "".join(c for c in word[1:] if c not in "aeiou")
            if len(letters) < 4:
                letters = (letters + word[1:])[:4]
            ticker = letters[:4].upper()
            if len(ticker) == 4 and ticker not in self.used and ticker + "W" not in self.used:
                self.used.add(ticker)
                return ticker, f"{word.capitalize()} {names.choice(_SUFFIXES[role])}"
