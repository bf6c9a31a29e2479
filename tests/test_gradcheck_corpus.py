"""Plain check_gradient names the classic mistakes of tests/gradcheck_corpus.py (>= 90 %
over all, every class at least 2/3), passes every right answer, and names no mistake that is
not there (the corpus's controls: wrong answers without a classic mistake)."""
import pytest

import gradcheck_corpus as corpus


@pytest.fixture(scope="module")
def measured():
    return corpus.run(seeds=range(3))


def test_the_corpus_has_three_functions_or_more_per_class():
    counts = {}
    for cls, *_ in corpus.cases(0):
        counts[cls] = counts.get(cls, 0) + 1
    assert set(counts) == set(corpus.CLASSES) and min(counts.values()) >= 3, counts


def test_at_least_90_percent_named_and_no_false_naming(measured):
    table, not_passed, misnamed, unnamed = measured
    named = sum(k for k, _ in table.values())
    total = sum(m for _, m in table.values())
    assert not_passed == []
    assert misnamed == []
    assert named >= 0.9 * total, unnamed
    for cls, (k, m) in table.items():
        assert k >= 2 * m / 3, (cls, unnamed)


@pytest.mark.slow
def test_more_seeds():
    table, not_passed, misnamed, _ = corpus.run(seeds=range(3, 15))
    assert not_passed == [] and misnamed == []
    assert sum(k for k, _ in table.values()) >= 0.9 * sum(m for _, m in table.values())
