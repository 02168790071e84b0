"""The BG/NBD and Gamma-Gamma fits against the published CDNOW results (Fader, Hardie & Lee
2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, log-likelihood -9582.4; Gamma-Gamma
p = 6.25, q = 3.74, nu = 15.44. Data: tests/data/README.md."""

import csv
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from services.analytics import clv

DATA = Path(__file__).parent / "data"


def _read(name):
    with open(DATA / name, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def cdnow():
    rows = _read("cdnow_customers_summary.csv")
    assert len(rows) == 2357
    return (
        np.array([float(r["frequency"]) for r in rows]),
        np.array([float(r["recency"]) for r in rows]),
        np.array([float(r["T"]) for r in rows]),
    )


@pytest.fixture(scope="module")
def bgnbd(cdnow):
    return clv.fit_bgnbd(*cdnow)


def test_bgnbd_fit_matches_the_published_cdnow_parameters(bgnbd):
    assert bgnbd["r"] == pytest.approx(0.243, abs=0.001)
    assert bgnbd["alpha"] == pytest.approx(4.414, abs=0.01)
    assert bgnbd["a"] == pytest.approx(0.793, abs=0.005)
    assert bgnbd["b"] == pytest.approx(2.426, abs=0.02)
    assert bgnbd["log_likelihood"] == pytest.approx(-9582.4, abs=0.1)


def test_bgnbd_predictions_match_the_paper(bgnbd, cdnow):
    # The paper's worked example: x=2, t_x=30.43, T=38.86 expects 1.226 purchases in the next
    # 39 weeks; a customer with no repeat purchase is certainly alive.
    expected = clv.expected_purchases(bgnbd, 39, [2], [30.43], [38.86])
    assert float(expected[0]) == pytest.approx(1.226, abs=0.005)
    assert float(clv.p_alive(bgnbd, [0], [0], [38.86])[0]) == 1.0
    # A customer who bought often but long ago is less likely alive than a recent one.
    stale, recent = clv.p_alive(bgnbd, [5, 5], [5.0, 38.0], [38.86, 38.86])
    assert 0 < stale < recent <= 1


def test_gamma_gamma_fit_matches_the_published_cdnow_parameters():
    rows = [r for r in _read("cdnow_customers_summary_with_transactions.csv") if int(r["x"]) > 0]
    x = np.array([float(r["x"]) for r in rows])
    m = np.array([float(r["zbar"]) for r in rows])
    fitted = clv.fit_gamma_gamma(x, m)
    assert fitted["p"] == pytest.approx(6.25, rel=0.01)
    assert fitted["q"] == pytest.approx(3.74, rel=0.01)
    assert fitted["v"] == pytest.approx(15.44, rel=0.01)


def test_summary_counts_days_and_excludes_the_first_purchase_from_spend():
    rows = [
        ("a", date(2026, 1, 1), 100),
        ("a", date(2026, 1, 1), 50),
        ("a", date(2026, 1, 8), 300),
        ("a", date(2026, 1, 15), 100),
        ("b", date(2026, 1, 10), 999),
    ]
    summary = clv.summarise(rows, date(2026, 1, 29), "weeks")
    assert summary.ids == ["a", "b"]
    assert list(summary.x) == [2, 0]
    assert list(summary.t_x) == [2, 0]
    assert list(summary.T) == [4, 19 / 7]
    assert list(summary.m) == [200, 0]


def test_a_fit_in_a_child_process_is_the_fit_in_this_one(cdnow):
    """What the service runs (``clv_runner.fit``: a child process, the summary as .npz, the
    result as JSON) gives what ``fit_and_predict`` gives here."""
    from services.analytics import clv_runner

    x, t_x, T = cdnow
    m = np.where(x > 0, 20 + 5 * x, 0.0)  # a spend per repeat customer, for Gamma-Gamma
    summary = clv.Summary([f"c{i}" for i in range(len(x))], x, t_x, T, m)
    here = clv.fit_and_predict(summary, 39)
    there = clv_runner.fit(summary, 39)
    assert there["bgnbd"] == pytest.approx(here["bgnbd"])
    assert there["gamma_gamma"] == pytest.approx(here["gamma_gamma"])
    assert there["predictions"] == here["predictions"]


def test_data_that_cannot_be_fitted_is_a_value_error_from_the_child_too():
    from services.analytics import clv_runner

    one = np.array([1.0])
    with pytest.raises(ValueError, match="not enough customers"):
        clv_runner.fit(clv.Summary(["a"], one, one, one, one), 10)


def test_a_fit_says_when_its_predictions_should_not_be_acted_on(cdnow, bgnbd):
    """CDNOW (1,411 repeat buyers) is a fit to act on; four customers gave a degenerate one
    (alpha at the optimiser's bound, everyone predicted alike) shown without a warning."""
    assert clv.fit_warnings(bgnbd, 1411) == []
    x, t_x, T = cdnow
    m = np.where(x > 0, 20 + 5 * x, 0.0)
    whole = clv.fit_and_predict(clv.Summary([f"c{i}" for i in range(len(x))], x, t_x, T, m), 39)
    assert whole["reliable"] is True and whole["warnings"] == []
    four = clv.Summary(
        ["a", "b", "c", "d"],
        np.array([3.0, 2.0, 4.0, 0.0]),
        np.array([30.0, 20.0, 40.0, 0.0]),
        np.array([40.0, 40.0, 40.0, 40.0]),
        np.array([100.0, 120.0, 90.0, 0.0]),
    )
    small = clv.fit_and_predict(four, 10)
    assert small["reliable"] is False
    assert "fitted on 3 customers with a repeat purchase" in small["warnings"][0]
    degenerate = {"r": 3902.0, "alpha": float(np.exp(clv.LOG_BOUND)), "a": 0.0001, "b": 2.0}
    assert "alpha" in clv.fit_warnings(degenerate, 100)[0]
