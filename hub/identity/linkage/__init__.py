"""Fellegi–Sunter record linkage: scoring a pair of person records (`scoring`), estimating
its m and u probabilities by expectation maximisation (`training`) and linking two files of
people in batch (`batch`, `mash-hub link`). The shipped model is trained offline on generated
data by `hub.demo.identity_training` (the hub itself never imports the demo).

A pair of records is compared field by field; each field's comparison falls into one level
(given name: exact, nickname, typo, similar, different; date of birth: exact, day/month swap,
year off by one, one-digit typo, different; ...). Each level has an m probability (how often
it occurs when the records are the same person) and a u probability (when they are not); its
weight is log2(m/u). The match weight of the pair is the sum of its fields' weights (a log2
Bayes factor; a missing field weighs 0), and the band follows from two thresholds:
`auto` (linked), `review` (an analyst decides), or None (no match).

Training (offline, on generated data: health x police of `hub.demo.generator`; the ground
truth is never read): u from a million random pairs (almost never the same person); m by
expectation maximisation on the candidate pairs of two blocking rules, each rule estimating
only the fields it does not fix (same date of birth -> names, sex, postcode; same postcode
and family initial -> given name, date of birth, sex); the date of birth's m from the pairs
that share a valid NHS number (EM on the postcode block mistakes a same-named parent and
child for one person). m is floored (a level never generated is rare, not impossible).
The result, with the thresholds (tuned on seed 7 by bench/identity.py, reported on seed 8),
term frequencies of common surnames and the given names common enough to be names in their
own right, is shipped as data in `hub/identity/weights.json`. Train again with:

    python -m hub.demo.identity_training train --households 20000 --seed 7 \
        --out hub/identity/weights.json

(thresholds are kept from the existing file unless --auto / --review are given).

Guards no weight can override: two different valid NHS numbers are never a match; dates of
birth a generation apart (a same-named parent and child) are never `auto` at query time, nor
is a pair whose given names are different names (not a nickname, not a slip of a rare
spelling), nor a date of birth slip together with a given-name slip (`Model.score`, strict).
The batch linker (`link`, `mash-hub link`) never auto-links dates of birth a generation
apart, applies the given-name guard where a household is in sight (another record with the
family name at the address or postcode, or with the family name and date of birth) and sends
a record's two near-equal auto candidates that are two people to review.

Batch options: `train` estimates m and u on the two files themselves (the same EM, no ground
truth; u's exact levels from the values' frequencies in each file) for files whose fields or
quality differ from the generated data; `one_to_one` says neither file holds a person twice,
so a pair that is each record's clear best candidate (by AMBIGUITY) is linked from the review
threshold up. An optional address column is compared by the share of words in common.
"""

from .batch import (
    AMBIGUITY,
    CSV_COLUMNS,
    TRAIN_RANDOM_PAIRS,
    Pair,
    Scored,
    assign,
    link,
    score_candidates,
    write_pairs,
)
from .scoring import (
    AUTO,
    FIELDS,
    GIVEN_SAME,
    LEVELS,
    MISSING,
    OPTIONAL_FIELDS,
    REVIEW,
    WEIGHTS_PATH,
    Model,
    Record,
    Score,
    address_tokens,
    blocking_keys,
    candidate_pairs,
    compare_address,
    compare_dob,
    compare_given,
    compare_postcode,
    default_model,
    dob_digits,
    frequent_given,
    levels,
    load_model,
    nickname_of,
    normalise,
    normalise_postcode,
    record,
    term_frequencies,
    valid_nhs,
)
from .training import TRAINING_BLOCKS, em, fit

__all__ = [
    "AMBIGUITY",
    "AUTO",
    "CSV_COLUMNS",
    "FIELDS",
    "GIVEN_SAME",
    "LEVELS",
    "MISSING",
    "OPTIONAL_FIELDS",
    "REVIEW",
    "TRAINING_BLOCKS",
    "TRAIN_RANDOM_PAIRS",
    "WEIGHTS_PATH",
    "Model",
    "Pair",
    "Record",
    "Score",
    "Scored",
    "address_tokens",
    "assign",
    "blocking_keys",
    "candidate_pairs",
    "compare_address",
    "compare_dob",
    "compare_given",
    "compare_postcode",
    "default_model",
    "dob_digits",
    "em",
    "fit",
    "frequent_given",
    "levels",
    "link",
    "load_model",
    "nickname_of",
    "normalise",
    "normalise_postcode",
    "record",
    "score_candidates",
    "term_frequencies",
    "valid_nhs",
    "write_pairs",
]
