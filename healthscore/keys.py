"""Account keys: always text, normalized per `key_transform` so exports that differ in case,
padding or Salesforce id form still join."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SF_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)


def key_to_text(values: pd.Series) -> pd.Series:
    """Keys as text: integers without a decimal point, floats that hold integers likewise."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("str")
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.astype("float64")
        whole = (numbers == np.round(numbers)) & (numbers.abs() < 2.0**63)
        text = numbers.astype("str").where(numbers.notna())
        text[whole] = numbers[whole].astype("int64").astype("str")
        return text
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("string").astype("str")
    return values.astype("str")


def normalize_keys(values: pd.Series, transforms: Sequence[str]) -> pd.Series:
    """Keys as text with each transform applied in order; empty keys become missing."""
    keys = key_to_text(values)
    for transform in transforms:
        if transform == "strip":
            keys = keys.str.strip()
        elif transform == "lower":
            keys = keys.str.lower()
        elif transform == "upper":
            keys = keys.str.upper()
        elif transform == "salesforce18":
            keys = salesforce18(keys)
        else:  # the config only admits the names above
            raise ValueError(f"unknown key transform {transform!r}")
    return keys.mask(keys.str.len() == 0)


def salesforce18(ids: pd.Series) -> pd.Series:
    """15-character case-sensitive Salesforce ids extended to their 18-character case-safe form.

    Ids of any other length are returned unchanged.
    """
    short = ids.str.len() == 15
    if not short.any():
        return ids
    chars = np.frombuffer("".join(ids[short]).encode("ascii", "replace"), dtype=np.uint8)
    upper = ((chars >= ord("A")) & (chars <= ord("Z"))).reshape(-1, 3, 5)
    bits = (upper * (1 << np.arange(5))).sum(axis=2)
    suffix = SF_ALPHABET[bits].view("S3").ravel().astype(str)
    out = ids.copy()
    out[short] = ids[short] + suffix
    return out
