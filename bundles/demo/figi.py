"""FIGI-shaped identifiers with a valid FIGI check digit."""
from __future__ import annotations

import numpy as np

_ALPHABET = np.array(list("BCDFGHJKLMNPQRSTVWXYZ0123456789"))  # FIGI: no vowels


def check_digit(body: str) -> str:
    """The FIGI check digit of an 11-character ``body`` (Luhn over letter values A=10..)."""
    total = 0
    for i, ch in enumerate(body):
        v = int(ch) if ch.isdigit() else ord(ch) - 55
        if i % 2 == 1:
            v *= 2
        total += sum(int(c) for c in str(v))
    return str((10 - total % 10) % 10)


def figi(rng, prefix: str = "BBG00") -> str:
    """A FIGI-shaped id: ``prefix``, random consonants/digits, and the FIGI check digit."""
    body = prefix + "".join(rng.choice(_ALPHABET, 11 - len(prefix)))
    return body + check_digit(body)
