"""Account keys: always text, normalized per `key_transform` so exports that differ in case,
padding or Salesforce id form still join."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from healthscore.parallel import on_two_threads

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
    return checked_keys(values, transforms)[0]


def checked_keys(values: pd.Series, transforms: Sequence[str]) -> tuple[pd.Series, pd.Series]:
    """`normalize_keys`, plus a mask of 18-character ids whose checksum suffix is wrong,
    checked as they reach the salesforce18 transform (before any later case change)."""
    keys = key_to_text(values)
    bad = pd.Series(False, index=values.index)
    for transform in transforms:
        if transform == "strip":
            keys = keys.str.strip()
        elif transform == "lower":
            keys = keys.str.lower()
        elif transform == "upper":
            keys = keys.str.upper()
        elif transform == "salesforce18":
            bad |= ~salesforce_suffix_ok(keys)
            keys = salesforce18(keys)
        else:  # the config only admits the names above
            raise ValueError(f"unknown key transform {transform!r}")
    return keys.mask(keys.str.len() == 0), bad


def salesforce18(ids: pd.Series) -> pd.Series:
    """15-character case-sensitive Salesforce ids extended to their 18-character case-safe form.

    Ids of any other length are returned unchanged.
    """
    short = (ids.str.len() == 15).fillna(False).astype(bool)
    if not short.any():
        return ids
    out = ids.copy()
    out[short] = ids[short] + _suffixes(ids[short])
    return out


def salesforce_suffix_ok(ids: pd.Series) -> pd.Series:
    """False for 18-character ids whose last three characters are not the checksum suffix of
    the first fifteen (a mistyped or lower-cased id); True for every other value."""
    long = (ids.str.len() == 18).fillna(False).astype(bool)
    ok = pd.Series(True, index=ids.index)
    if long.any():
        ok[long] = (ids[long].str[15:] == _suffixes(ids[long].str[:15])).to_numpy()
    return ok


def _suffixes(ids: pd.Series) -> np.ndarray:
    """The 3-character case-safe suffix of each 15-character id: per 5-character chunk, a
    5-bit number with bit i set when character i is an upper-case letter, as a letter of
    `ABCDEFGHIJKLMNOPQRSTUVWXYZ012345`."""
    chars = np.frombuffer("".join(ids).encode("ascii", "replace"), dtype=np.uint8)  # one byte a character
    upper = ((chars >= ord("A")) & (chars <= ord("Z"))).reshape(-1, 3, 5)
    bits = (upper * (1 << np.arange(5))).sum(axis=2)
    suffixes: np.ndarray = SF_ALPHABET[bits].view("S3").ravel().astype(str)
    return suffixes


def coded_keys(values: pd.Series, transforms: Sequence[str]) -> tuple[pd.Series, np.ndarray]:
    """`checked_keys` computed once per distinct value rather than per row: the keys as a
    Categorical with sorted text categories (missing where empty), and the per-row mask of
    bad Salesforce ids."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        raw_codes = values.array.codes  # type: ignore[attr-defined]  # a view, not a copy
        distinct = pd.Series(values.cat.categories)
    else:  # mixed values (1, 1.0, True in one JSON column) as text first: factorize would merge them
        raw_codes, uniques = pd.factorize(key_to_text(values) if pd.api.types.is_object_dtype(values.dtype) else values)
        distinct = pd.Series(uniques)
    text, bad = checked_keys(distinct, transforms)
    # keys the transforms left as they were (an empty one becomes missing) stay distinct: sorting them is enough
    unchanged = not transforms or same_text(text, checked_keys(distinct, ())[0])
    bad_distinct = bad.to_numpy(dtype=bool)
    bad_rows = np.append(bad_distinct, False)[raw_codes] if bad_distinct.any() else np.zeros(len(values), dtype=bool)
    if unchanged and _text_categories(values) and ascending(text):
        return values, bad_rows  # text categories sorted as read (a Parquet key): the Categorical stands
    codes_of_distinct, categories = _sorted(text) if unchanged else pd.factorize(text, sort=True)
    # code -1 (missing) picks the appended -1; the codes take the smallest type that holds them
    recode = np.append(codes_of_distinct, -1).astype(_code_type(len(categories)))
    codes = raw_codes if _is_identity(recode, raw_codes) else recode[raw_codes]
    coded = pd.Categorical.from_codes(codes, dtype=distinct_dtype(pd.Index(categories)), validate=False)
    keys = pd.Series(coded, index=values.index, name=values.name, copy=False)
    return keys, bad_rows


def _text_categories(values: pd.Series) -> bool:
    """True for a Categorical whose categories are text as `_sorted` gives it (not numbers)."""
    return isinstance(values.dtype, pd.CategoricalDtype) and values.cat.categories.dtype == "str"


def dictionary_categorical(column: pa.ChunkedArray) -> pd.Categorical:
    """Dictionary-encoded text with a dictionary per chunk (pyarrow's CSV reader makes one
    per block) as a Categorical with sorted categories (`parts_categorical`). Pyarrow's own
    conversion unifies them on one thread and makes a Python string of each distinct value,
    which pandas then hashes again (L's 50M keys: seconds)."""
    parts = [(chunk.indices, chunk.dictionary) for chunk in column.chunks]
    return parts_categorical(parts, column.type.value_type)


MANY_PER_PART = 1 << 16  # distinct values a part holds on average from which the whole has many


def parts_categorical(
    parts: Sequence[tuple[np.ndarray | pa.Array, pa.Array]], value_type: pa.DataType
) -> pd.Categorical:
    """Text coded in parts, each part's codes (-1 or null: missing) indexing its own
    distinct values (a CSV block's dictionary, a half column's `encoded`), as one
    Categorical with sorted categories: the parts' values hashed together once (`encoded`)
    and sorted, then each part's codes mapped to their category by one gather into the
    whole's codes (merging the parts' codes first and recoding them after went over every
    row three times: 50M keys, 600 MB of fresh memory). Parts of many distinct values each
    (L's CSV blocks: 190 of 170k keys) are hashed in partitions (`encoded(many=True)`)."""
    values = pa.chunked_array([values for _, values in parts], type=value_type)
    many = len(values) >= PARALLEL_ROWS and len(values) >= MANY_PER_PART * len(parts)
    value_codes, distinct = encoded(values, many=many)
    recode, dtype = _recoding(distinct)
    ranks = recode[value_codes]  # each part's value's category (-1: a null value)
    codes = np.empty(sum(len(part) for part, _ in parts), dtype=recode.dtype)
    row, entry = 0, 0
    for part, values in parts:  # a part is a block or half of the rows, not a row
        lookup = np.append(ranks[entry : entry + len(values)], recode[-1])  # code -1 picks the appended -1
        at = part if isinstance(part, np.ndarray) else pc.fill_null(part, -1).to_numpy()
        np.take(lookup, at, out=codes[row : row + len(part)], mode="wrap")  # (wrap: -1 is the last)
        row, entry = row + len(part), entry + len(values)
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _recoding(distinct: pa.Array) -> tuple[np.ndarray, pd.CategoricalDtype]:
    """Each distinct text value's position in sorted order, in the smallest code type, with
    -1 appended for code -1 (missing) to pick; and the CategoricalDtype of the sorted values."""
    rank, categories = _sorted(distinct)
    return np.append(rank, -1).astype(_code_type(len(categories))), distinct_dtype(categories)


def distinct_dtype(categories: pd.Index) -> pd.CategoricalDtype:
    """The CategoricalDtype of categories known to be distinct and never missing (a
    factorization's or a dictionary's), without pandas hashing them again to check them:
    that takes 0.2-0.6 s for a million text keys. Pandas' private fast path for it has
    been there since 0.2x; where it is gone, the public constructor checks them."""
    unchecked = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    dtype: pd.CategoricalDtype = pd.CategoricalDtype(categories) if unchecked is None else unchecked(categories, False)
    return dtype


def ascending(values: pd.Series | pd.Index | pa.Array) -> bool:
    """True when text values, none missing, are in strictly ascending order (Arrow compares
    UTF-8 bytes, which order as code points do, as Python's str comparison does)."""
    text = text_array(values)
    return text.null_count == 0 and (len(text) < 2 or bool(pc.all(pc.less(text[:-1], text[1:])).as_py()))


def _sorted(distinct: pd.Series | pa.Array) -> tuple[np.ndarray, pd.Index]:
    """`pd.factorize(distinct, sort=True)` of values known to be distinct: each value's
    position in sorted order (-1 where missing) and the sorted values, by one Arrow sort and
    no hashing."""
    text = text_array(distinct)
    order = pc.array_sort_indices(text, null_placement="at_end").to_numpy()
    present = len(text) - text.null_count
    codes = np.full(len(text), -1, dtype=np.int64)
    codes[order[:present]] = np.arange(present)
    return codes, pd.Index(text.take(order[:present]).to_pandas().array)


def same_text(a: pd.Series | pd.Index, b: pd.Series | pd.Index) -> bool:
    """True when two text columns hold the same values, missing in the same places."""
    x, y = text_array(a), text_array(b)
    if len(x) != len(y) or x.null_count != y.null_count:
        return False
    both = pc.and_(pc.equal(x.is_null(), y.is_null()), pc.fill_null(pc.equal(x, y), True))
    return bool(pc.all(both).as_py() is not False)


def _code_type(categories: int) -> type[np.signedinteger[Any]]:
    """The integer type pandas keeps a Categorical's codes in for that many categories."""
    return np.int8 if categories < 2**7 else np.int16 if categories < 2**15 else np.int32


def _is_identity(recode: np.ndarray, raw_codes: np.ndarray) -> bool:
    """True when recoding would leave the codes as they are (distinct values already sorted
    and unchanged, the codes already of the right type)."""
    return raw_codes.dtype == recode.dtype and bool((recode[:-1] == np.arange(len(recode) - 1)).all())


def key_codes(keys: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of account keys (-1 where missing; int8 to int64, as small as they fit)
    and the sorted distinct keys they index: a Categorical's own codes (as sources read
    them, not copied), else a sorted factorization."""
    if isinstance(keys.dtype, pd.CategoricalDtype) and ascending(keys.cat.categories):
        codes: np.ndarray = keys.array.codes  # type: ignore[attr-defined]
        return codes, pd.Index(keys.cat.categories, name="account_id")
    if isinstance(keys.dtype, pd.CategoricalDtype):  # unsorted categories: sort the text, not their order
        keys = keys.astype("str")
    codes, uniques = pd.factorize(keys, sort=True)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques, name="account_id")


COUNT_BLOCK = 1 << 22  # codes counted per block by `code_counts`


def code_counts(codes: np.ndarray, size: int) -> np.ndarray:
    """Rows per code below `size` (int64; -1, a missing key, counts nowhere), counted a
    block at a time: `np.bincount(codes[codes >= 0])` copies every code twice (picked,
    then widened to int64), 600 MB for L's 50M events, held at once beside the rest."""
    counts = np.zeros(size + 1, dtype=np.int64)
    for start in range(0, len(codes), COUNT_BLOCK):
        block = codes[start : start + COUNT_BLOCK].astype(np.int64)
        block += 1  # -1 -> 0: the missing ones, dropped below
        counts += np.bincount(block, minlength=size + 1)
    return counts[1:]


def among(values: pd.Index, known: pd.Index) -> np.ndarray:
    """A mask of the text keys `values` found among `known`, hashed once in Arrow (pandas'
    `isin` on Arrow text turns every known key into a Python object first)."""
    mask: np.ndarray = positions_in(values, known) >= 0
    return mask


def positions_in(values: pd.Index | pa.Array, known: pd.Index | pa.Array) -> np.ndarray:
    """Each text key of `values`: its position in `known` (int64, -1 where absent), hashed in Arrow."""
    at = pc.index_in(text_array(values), value_set=text_array(known))
    positions: np.ndarray = pc.fill_null(at, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return positions


def text_array(values: pd.Index | pd.Series | pa.Array) -> pa.Array:
    """Keys as one Arrow large_string array: Arrow-backed text as it is held (no Python
    objects), anything else converted."""
    if isinstance(values, pa.Array):
        return values if values.type == pa.large_string() else values.cast(pa.large_string())
    array = values.array
    if hasattr(array, "__arrow_array__") and not isinstance(values.dtype, pd.CategoricalDtype):
        arrow = pa.array(array)
        if pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type):
            chunks = arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow
            return chunks.cast(pa.large_string())
    return pa.array(np.asarray(values.astype("str"), dtype=object), type=pa.large_string(), from_pandas=True)


PARALLEL_ROWS = 1_000_000  # from this many values on, text is hashed on two threads


def encoded(column: pa.ChunkedArray, threads: int = 2, many: bool = False) -> tuple[np.ndarray, pa.Array]:
    """Dictionary codes of text (int32, -1 where missing) and the distinct values they index.
    A long column is hashed in two halves on two threads (unless `threads` is 1), the second
    half's dictionary then merged into the first's (hashing strings is most of the time of
    reading a key). Text known to hold `many` distinct values (a million keys) is hashed a
    partition at a time (`_partitioned`)."""
    encode = _partitioned if many else _encoded_part
    cut = _halfway(column) if threads > 1 else None
    if cut is None:
        return encode(column)
    first, second = on_two_threads(encode, [column[:cut], column[cut:]])
    return merged(first, second)


def merged(first: tuple[np.ndarray, pa.Array], second: tuple[np.ndarray, pa.Array]) -> tuple[np.ndarray, pa.Array]:
    """`encoded` of two halves of a column, each encoded on its own: one set of codes, the
    second half's dictionary merged into the first's (its new values appended)."""
    (codes, dictionary), (more_codes, more) = first, second
    at = pc.index_in(more, value_set=dictionary)  # the second half's values in the first's dictionary
    new = at.is_null().to_numpy(zero_copy_only=False)
    remap = pc.fill_null(at, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    remap[new] = np.arange(len(dictionary), len(dictionary) + int(new.sum()), dtype=np.int32)
    values = pa.concat_arrays([dictionary, more.filter(pa.array(new))])
    return np.concatenate([codes, np.append(remap, np.int32(-1))[more_codes]]), values  # -1 picks the appended -1


def _halfway(column: pa.ChunkedArray) -> int | None:
    """Where to split a column for two threads: None when it is too short to be worth it."""
    return len(column) // 2 if len(column) >= PARALLEL_ROWS else None


def _encoded_part(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """`encoded` on one thread; every chunk of Arrow's encoding shares one dictionary."""
    coded = pc.dictionary_encode(column)
    if coded.num_chunks == 0:
        return np.empty(0, dtype=np.int32), pa.array([], type=column.type)
    indices = pa.chunked_array([chunk.indices for chunk in coded.chunks], type=pa.int32())
    codes = pc.fill_null(indices, -1).to_numpy().astype(np.int32, copy=False)
    return codes, coded.chunk(coded.num_chunks - 1).dictionary


PARTITIONS = 16  # partitions of text of many distinct values, by four bits of one byte of each
SAMPLE = 4096  # values whose bytes pick the byte that partitions them
LAST_BYTES = 8  # bytes from the end of each value considered for it


def _partitioned(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """`_encoded_part` a partition of the rows at a time, the rows split by four bits of one
    byte of their value (`_partition_of`), so a partition's hash table is a sixteenth of one
    for all and stays in cache: a million distinct keys are hashed a third faster (L's half,
    25M keys: 4.0-4.5 s -> 2.7-2.9 s on one thread). Equal values share a partition, so the
    partitions' dictionaries are disjoint and simply follow one another."""
    groups = _partition_of(column)
    if groups is None:
        return _encoded_part(column)
    codes = np.empty(len(column), dtype=np.int32)
    dictionaries, size = [], 0
    for group in np.flatnonzero(np.bincount(groups, minlength=PARTITIONS)):
        mine = groups == group
        part_codes, values = _encoded_part(column.filter(pa.array(mine)))
        codes[mine] = np.where(part_codes >= 0, part_codes + size, -1)
        dictionaries.append(values)
        size += len(values)
    return codes, pa.concat_arrays(dictionaries)


def _partition_of(column: pa.ChunkedArray) -> np.ndarray | None:
    """Each value's partition (0-15): the low four bits of its byte at the place from its
    end (of the last eight; its first byte when shorter; 0 when empty) whose bits vary most
    among the first values; None for text whose bytes there hardly vary, or that is not
    UTF-8 text held with offsets."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return None
    chunks = [chunk for chunk in column.chunks if len(chunk)]
    if not chunks:
        return None
    sample = chunks[0].slice(0, SAMPLE)
    spread = [len(np.unique(_byte_from_end(sample, back))) for back in range(1, LAST_BYTES + 1)]
    if max(spread) < 4:  # too few partitions to be worth splitting the rows
        return None
    back = 1 + int(np.argmax(spread))
    return np.concatenate([_byte_from_end(chunk, back) for chunk in column.chunks])


def _byte_from_end(chunk: pa.Array, back: int) -> np.ndarray:
    """The low four bits of each value's byte `back` places from its end (its first byte
    when shorter, 0 when empty), from the chunk's offsets and bytes (no Python strings)."""
    width = np.dtype(np.int64 if pa.types.is_large_string(chunk.type) else np.int32)
    _, offset_buffer, data_buffer = chunk.buffers()
    if len(chunk) == 0 or offset_buffer is None:
        return np.zeros(len(chunk), dtype=np.uint8)
    offsets = np.frombuffer(offset_buffer, dtype=width, count=len(chunk) + 1, offset=chunk.offset * width.itemsize)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, dtype=np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    empty = ends <= starts
    at = np.maximum(ends - back, starts)
    np.clip(at, 0, max(len(data) - 1, 0), out=at)
    picked = data[at] & 15 if len(data) else np.zeros(len(chunk), dtype=np.uint8)
    picked[empty] = 0  # an empty value (or a null's slot) in partition 0 wherever it is
    return picked.astype(np.uint8, copy=False)
