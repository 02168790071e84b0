"""Probabilistic customer lifetime value: BG/NBD and Gamma-Gamma, by maximum likelihood.

- BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"): while alive a
  customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after each purchase
  they drop out with probability p ~ Beta(a, b). From each customer's frequency ``x``
  (repeat purchase periods), recency ``t_x`` (first to last purchase) and age ``T``
  (first purchase to the as-of date) it gives the expected purchases in the next ``t``
  periods and P(alive).
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): the mean value of a customer's
  repeat purchases ``m_x`` over ``x`` purchases, with spend ~ Gamma(p, nu), nu ~ Gamma(q, gamma);
  gives the expected value of a purchase.

Fitted with scipy's Nelder-Mead, then L-BFGS-B, on the logarithms of the parameters.
Checked against the published CDNOW fit (tests/test_clv.py). Pure functions, no I/O, apart
from :func:`main`: the service runs a fit in a child process (``clv_runner``), so that scipy
(about 70 MB once imported) and the fit's arrays never stay in the service's memory, and a
fit never holds the service's interpreter.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
from scipy import optimize, special

from services.analytics.purchase_summary import UNITS, Summary, summarise

__all__ = ["UNITS", "Summary", "fit_and_predict", "main", "summarise"]

# -- BG/NBD --------------------------------------------------------------------------------------


def bgnbd_log_likelihood(params, x, t_x, T, weights=None) -> float:
    r, alpha, a, b = params
    A1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    A2 = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        A3 = np.where(
            x > 0,
            special.betaln(a + 1, np.maximum(b + x - 1, 1e-12))
            - special.betaln(a, b)
            - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    ll = A1 + np.logaddexp(A2, A3)
    return float(np.sum(ll if weights is None else ll * weights))


#: Bounds of the log-parameters: a model whose heterogeneity vanishes (r, alpha -> infinity, as
#: happens on small or very regular data) stops at the boundary instead of overflowing.
LOG_BOUND = 12.0


def _fit(negative_ll, start: np.ndarray) -> np.ndarray:
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    with np.errstate(all="ignore"):
        first = optimize.minimize(
            negative_ll,
            np.log(start),
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-9},
        )
        second = optimize.minimize(negative_ll, first.x, method="L-BFGS-B", bounds=bounds)
    best = second if second.fun <= first.fun else first
    return np.exp(best.x)


def _compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Identical rows once, with their counts as weights (CDNOW: 2,357 rows → ~1,400)."""
    stacked = np.stack(columns, axis=1)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(float)


def fit_bgnbd(x, t_x, T) -> dict[str, float]:
    (ux, ut, uT), weights = _compress(
        np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)
    )

    def negative(log_params):
        value = bgnbd_log_likelihood(np.exp(log_params), ux, ut, uT, weights)
        return -value if np.isfinite(value) else 1e300

    r, alpha, a, b = _fit(negative, np.array([1.0, max(float(np.mean(T)), 1.0), 1.0, 1.0]))
    ll = bgnbd_log_likelihood((r, alpha, a, b), ux, ut, uT, weights)
    return {"r": r, "alpha": alpha, "a": a, "b": b, "log_likelihood": ll}


def p_alive(params: dict[str, float], x, t_x, T) -> np.ndarray:
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(
            x > 0,
            a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + t_x)) ** (r + x),
            0.0,
        )
    return 1.0 / (1.0 + ratio)


def expected_purchases(params: dict[str, float], t: float, x, t_x, T) -> np.ndarray:
    """E[purchases in the next ``t`` periods | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10)."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    first = (a + b + x - 1) / (a - 1)
    second = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        denominator = 1 + np.where(
            x > 0,
            a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + t_x)) ** (r + x),
            0.0,
        )
    return first * second / denominator


# -- Gamma-Gamma ---------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params, x, m, weights=None) -> float:
    p, q, v = params
    ll = (
        special.gammaln(p * x + q)
        - special.gammaln(p * x)
        - special.gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + (p * x) * np.log(x)
        - (p * x + q) * np.log(x * m + v)
    )
    return float(np.sum(ll if weights is None else ll * weights))


def fit_gamma_gamma(x, m) -> dict[str, float]:
    """Fitted on the customers with at least one repeat purchase."""
    x, m = np.asarray(x, float), np.asarray(m, float)
    keep = (x > 0) & (m > 0)
    (ux, um), weights = _compress(x[keep], m[keep])

    def negative(log_params):
        value = gamma_gamma_log_likelihood(np.exp(log_params), ux, um, weights)
        return -value if np.isfinite(value) else 1e300

    p, q, v = _fit(negative, np.array([1.0, 1.0, max(float(np.mean(um)), 1.0)]))
    ll = gamma_gamma_log_likelihood((p, q, v), ux, um, weights)
    return {"p": p, "q": q, "v": v, "log_likelihood": ll}


def expected_spend(params: dict[str, float], x, m) -> np.ndarray:
    """E[value of a purchase | x, m_x]; the population mean p·v/(q-1) when x = 0."""
    p, q, v = params["p"], params["q"], params["v"]
    x, m = np.asarray(x, float), np.asarray(m, float)
    return (p * (v + x * m)) / (p * x + q - 1)


#: Fewer customers with a repeat purchase than this, and the fit says little (the usual rule
#: of thumb for BG/NBD: a few dozen repeat buyers at least).
MIN_REPEAT_CUSTOMERS = 30


def fit_warnings(bg: dict[str, float], repeat_customers: int) -> list[str]:
    """Why the predictions should not be acted on, if they should not: too few repeat buyers,
    or a BG/NBD parameter stopped at its bound (heterogeneity vanished: every customer gets
    about the same prediction, as a new user saw with four customers)."""
    warnings = []
    if repeat_customers < MIN_REPEAT_CUSTOMERS:
        warnings.append(
            f"fitted on {repeat_customers} customers with a repeat purchase; at least "
            f"{MIN_REPEAT_CUSTOMERS} are needed for the predictions to say much"
        )
    at_bound = [
        name for name in ("r", "alpha", "a", "b") if abs(abs(math.log(bg[name])) - LOG_BOUND) < 0.01
    ]
    if at_bound:
        warnings.append(
            f"the purchase model is degenerate ({', '.join(at_bound)} at the optimiser's bound): "
            "the data cannot tell customers apart, so their predictions are nearly the same"
        )
    return warnings


def fit_and_predict(summary: Summary, horizon: float, value_scale: float = 100.0) -> dict:
    """Fit both models and predict each customer's purchases, P(alive), spend and value over
    ``horizon`` periods. Values are in minor units; the Gamma-Gamma fit runs on
    ``value / value_scale`` (major units) for numerical comfort."""
    n = len(summary.ids)
    if n < 3 or int(np.sum(summary.x > 0)) < 2:
        raise ValueError("not enough customers with repeat purchases to fit")
    bg = fit_bgnbd(summary.x, summary.t_x, summary.T)
    gg = fit_gamma_gamma(summary.x, summary.m / value_scale)
    purchases = expected_purchases(bg, horizon, summary.x, summary.t_x, summary.T)
    alive = p_alive(bg, summary.x, summary.t_x, summary.T)
    spend = expected_spend(gg, summary.x, summary.m / value_scale) * value_scale
    value = purchases * spend
    if not (np.all(np.isfinite(value)) and np.all(np.isfinite(alive))):
        raise ValueError("the models did not converge on this data")
    warnings = fit_warnings(bg, int(np.sum(summary.x > 0)))
    return {
        "bgnbd": bg,
        "gamma_gamma": {**gg, "v": gg["v"] * value_scale, "v_major_units": gg["v"]},
        "customers": n,
        "repeat_customers": int(np.sum(summary.x > 0)),
        "reliable": not warnings,
        "warnings": warnings,
        "predictions": [
            {
                "customer_id": summary.ids[i],
                "frequency": int(summary.x[i]),
                "recency": round(float(summary.t_x[i]), 4),
                "age": round(float(summary.T[i]), 4),
                "expected_purchases": round(float(purchases[i]), 6),
                "p_alive": round(float(alive[i]), 6),
                "expected_order_value": round(float(spend[i])),
                "predicted_value": round(float(value[i])),
            }
            for i in range(n)
        ],
    }


def main() -> int:
    """``python -m services.analytics.clv HORIZON SUMMARY.npz``: a :class:`Summary` as
    ``clv_runner.encode`` writes it, the fit as JSON on stdout; exit 3 with
    ``{"error": ...}`` when the data cannot be fitted."""
    horizon, path = float(sys.argv[1]), sys.argv[2]
    with np.load(path, allow_pickle=False) as arrays:
        summary = Summary(
            [str(i) for i in arrays["ids"]], arrays["x"], arrays["t_x"], arrays["T"], arrays["m"]
        )
    try:
        result = fit_and_predict(summary, horizon)
    except ValueError as exc:
        json.dump({"error": str(exc)}, sys.stdout)
        return 3
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
