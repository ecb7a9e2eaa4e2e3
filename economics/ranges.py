"""The error of a projected sum of days, when a series' noise is autocorrelated.

A least-squares projection (level, trend, weekday effects fitted on the last L days) is
wrong for a sum of the next h days by the future noise it cannot know, plus what the fit got
wrong: both depend on how the noise is correlated. Here the noise around the line is an
AR(1) process (coefficient phi in [0, 1], phi = 1 a random walk) plus white noise. The
projection carries the last day's residual forward (weight kappa phi^j on day j: a series
above its line stays above it as long as its noise remembers), and its slope may be shrunk
(kept at `keep` of its estimate, the line pivoting on the window's last day).

For a design shared by a group of series, the variance of the error of every h-day sum is a
quadratic form in the design's weights, the same for every series but for the noise's
parameters and `keep`: its pieces are computed once per design on a grid of phi
(`ErrorModel`). Each series then needs only its residuals:

- the two variances (AR innovation, white) that match the residuals' energy and lag-1
  product at each grid phi, and how well each phi then predicts the lag 2-4 products: phi
  is averaged over with those likelihood weights, not picked;
- the variance of the slope and of each h-day sum's error, averaged the same way.

Every quadratic form weighs days by weights that sum to zero (a fitted intercept absorbs any
constant), so the AR(1) covariance can be written as `(phi^|i-j| - 1) / (1 - phi^2)`, which
is finite and continuous up to the random walk's `-|i-j| / 2` at phi = 1.

Calibration. phi is known only roughly from 56 days (persistent noise reads as less
persistent than it is) and the variance of a sum grows faster than linearly in phi, so the
plug-in variance is too small exactly where noise wanders. The whole procedure is therefore
run once per design on simulated noise (fixed seed: deterministic) and each sd is scaled by
the factor that makes the 90% range hold 90% of the time, by bins of the fitted phi and of
the residuals' variance ratio (`_wander`). Imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from math import erfc, sqrt

import numpy as np

from llmgov.economics._numeric import matmul

PHI_GRID = np.concatenate([np.linspace(0.0, 0.9, 19), [0.92, 0.94, 0.96, 0.97, 0.98, 0.99, 1.0]])
_LAGS = 4  # lag products used to tell autocorrelated noise from white noise
TREND_T = 2.0  # a slope with |t| under this is dropped; above it, shrunk by 1 - (2/t)^2


def lag_covariance(phi: float, size: int) -> np.ndarray:
    """`(size,)` AR(1) covariance at lags 0..size-1 per unit innovation variance, less the
    lag-0 value: `(phi^k - 1) / (1 - phi^2) = -(1 + phi + ... + phi^(k-1)) / (1 + phi)`."""
    powers = np.cumsum(np.concatenate([[0.0], phi ** np.arange(size - 1)]))
    return -powers / (1 + phi)


def keep_of(slope: np.ndarray, slope_sd: np.ndarray) -> np.ndarray:
    """The share of a fitted slope to keep: positive-part James-Stein on its t-statistic,
    0 under |t| = TREND_T (always kept whole, for a noiseless trend)."""
    size = np.abs(slope)
    clear = size > TREND_T * slope_sd
    keep = np.zeros(size.shape)
    keep[clear] = 1 - (TREND_T * slope_sd[clear] / size[clear]) ** 2
    return keep


@dataclass(frozen=True)
class _Forms:
    """Quadratic forms of one noise covariance (per unit variance), `(K,)` unless noted:
    `drop` the slope-dropped projection's error, `diff` what keeping the slope adds,
    `own` `()` the carried residual's variance, and the cross terms."""

    drop: np.ndarray
    diff: np.ndarray
    own: float
    drop_diff: np.ndarray
    drop_own: np.ndarray
    diff_own: np.ndarray
    lags: np.ndarray  # (1 + _LAGS,) expected residual products at lags 0.._LAGS
    slope: float  # variance of the fitted slope

    def variance(self, keep: np.ndarray, carry: np.ndarray) -> np.ndarray:
        """`(n, K)` for `keep` `(n,)` and the carried residual's weight `carry` `(n, K)`."""
        k = keep[:, None]
        return (
            self.drop
            + k * k * self.diff
            + carry * carry * self.own
            + 2 * k * self.drop_diff
            - 2 * carry * self.drop_own
            - 2 * k * carry * self.diff_own
        )


@dataclass(frozen=True, eq=False)
class ErrorModel:
    """The forms of one design for the AR(1) part at each grid phi (`ar`, G of them) and for
    white noise (`white`), `carry` `(G, K)` = phi + ... + phi^h, and the calibration."""

    ar: tuple[_Forms, ...]
    white: _Forms
    carry: np.ndarray
    calibration: np.ndarray | None = None  # (phi bins, wander bins, K) factor on the sd
    wander_edges: np.ndarray | None = None  # inner edges of the wander bins

    @cached_property
    def tables(self) -> dict[str, np.ndarray]:
        """`(G, K)` the AR forms stacked over the grid, with the carry folded in where a
        term has the carried residual (own: carry^2 own, *_own: carry x the form)."""
        stack = {
            name: np.array([getattr(f, name) for f in self.ar])
            for name in ("drop", "diff", "drop_diff", "drop_own", "diff_own")
        }
        own = np.array([f.own for f in self.ar])[:, None]
        stack["own"] = self.carry**2 * own
        stack["drop_own"] = self.carry * stack["drop_own"]
        stack["diff_own"] = self.carry * stack["diff_own"]
        return stack

    def fit(self, residuals: np.ndarray) -> Fit:
        """The noise of each row of `residuals` `(n, L)` (see the module docstring)."""
        n, length = residuals.shape
        observed = np.stack(
            [
                np.einsum("ij,ij->i", residuals[:, k:], residuals[:, : length - k])
                for k in range(1 + _LAGS)
            ],
            axis=1,
        )
        lag_ar = np.array([forms.lags for forms in self.ar])  # (G, 1 + _LAGS)
        a0, a1 = lag_ar[None, :, 0], lag_ar[None, :, 1]
        w0, w1 = self.white.lags[0], self.white.lags[1]
        e0, e1 = observed[:, :1], observed[:, 1:2]
        # (n, G): the AR and white variances matching energy and lag 1 at each grid phi
        determinant = a0 * w1 - a1 * w0
        nonzero = np.broadcast_to(determinant != 0, (n, a0.size))
        ar = np.divide(e0 * w1 - e1 * w0, determinant, out=np.zeros((n, a0.size)), where=nonzero)
        white = np.divide(a0 * e1 - a1 * e0, determinant, out=np.zeros((n, a0.size)), where=nonzero)
        # outside the admissible region: all AR at that phi, or all white
        outside = (ar < 0) | (white < 0)
        only_white = (a1 * (e0 / a0) > e1) | (ar < 0)
        ar = np.where(outside, np.where(only_white, 0.0, e0 / a0), ar)
        white = np.where(outside, np.where(only_white, e0 / w0, 0.0), white)
        # how well each phi predicts lags 2.._LAGS, as autocorrelations, against their
        # sampling error (Bartlett: (1 + 2 sum r_k^2) / L); the lags' errors are correlated,
        # so their mean counts as one observation
        predicted = ar[:, :, None] * lag_ar[None, :, 2:] + white[:, :, None] * self.white.lags[2:]
        scale = np.maximum(e0, 1e-300)
        correlations = observed[:, 1:] / scale
        sampling = (1 + 2 * (correlations**2).sum(axis=1, keepdims=True)) / length
        misfit = ((predicted - observed[:, None, 2:]) / scale[:, :, None]) ** 2
        log_weight = -misfit.mean(axis=2) / (2 * sampling)
        weight = np.exp(log_weight - log_weight.max(axis=1, keepdims=True))
        weight /= weight.sum(axis=1, keepdims=True)  # (n, G)
        # the share of the last residual that remembers (its stationary variance share)
        memory = ar / (1 - np.minimum(PHI_GRID, 0.98) ** 2)[None, :]
        kappa = np.divide(
            memory, memory + white, out=np.zeros_like(memory), where=memory + white > 0
        )
        slope = weight * (
            ar * np.array([forms.slope for forms in self.ar])[None, :] + white * self.white.slope
        )
        return Fit(
            self,
            weight,
            ar,
            white,
            kappa,
            weight @ PHI_GRID,
            _wander(residuals),
            np.maximum(slope.sum(axis=1), 0.0),
        )


@dataclass(frozen=True)
class Fit:
    """The noise of n series: per grid phi `weight`, `ar` and `white` variances and `kappa`
    `(n, G)`; `phi` the weighted mean phi and `wander` the variance ratio `(n,)`;
    `slope_variance` `(n,)`."""

    model: ErrorModel
    weight: np.ndarray
    ar: np.ndarray
    white: np.ndarray
    kappa: np.ndarray
    phi: np.ndarray
    wander: np.ndarray
    slope_variance: np.ndarray

    def memory(self, days: int) -> np.ndarray:
        """`(n, days)` weight of the last residual on each of the next `days` days."""
        return matmul(
            self.weight * self.kappa, PHI_GRID[:, None] ** np.arange(1, days + 1)[None, :]
        )

    def sum_variance(self, keep: np.ndarray, moved: np.ndarray | None = None) -> np.ndarray:
        """`(n, K)` variance of the error of each h-day sum with the slope kept at `keep`
        `(n,)`, plus `moved**2` (what shrinking moved the sums by, `(n, K)`: the trend
        may be real), calibrated.

        Each grid phi's variance is a quadratic in `keep` and in the carried weight
        (kappa times the grid's `carry`), so the weighted sum over the grid is a few
        `(n, G) @ (G, K)` products."""
        model = self.model
        k = keep[:, None]
        ar, white = self.weight * self.ar, self.weight * self.white
        carried = self.kappa  # (n, G) times model.carry (G, K) is each grid's carry weight
        tables = model.tables
        total = (
            matmul(ar, tables["drop"])
            + k * k * (matmul(ar, tables["diff"]))
            + 2 * k * (matmul(ar, tables["drop_diff"]))
        )
        total += matmul((ar * carried**2), tables["own"]) - 2 * matmul(
            (ar * carried), tables["drop_own"]
        )
        total -= 2 * k * (matmul((ar * carried), tables["diff_own"]))
        w = model.white
        white_total = white.sum(axis=1)[:, None]
        total += white_total * (w.drop + k * k * w.diff + 2 * k * w.drop_diff)
        total += matmul(white * carried**2, model.carry**2 * w.own)
        total -= 2 * matmul(white * carried, model.carry * w.drop_own)
        total -= 2 * k * (matmul(white * carried, model.carry * w.diff_own))
        np.maximum(total, 0.0, out=total)
        if moved is not None:
            total += moved**2
        if model.calibration is not None:
            bins = _wander_bin(self.wander, model.wander_edges)
            total *= model.calibration[_phi_bin(self.phi), bins] ** 2
        return total


_CACHE: dict[bytes, ErrorModel] = {}


def error_model(design: np.ndarray, future: np.ndarray, horizons: np.ndarray) -> ErrorModel:
    """The `ErrorModel` of a least-squares fit on `design` `(L, p)` (column 0 the intercept,
    column 1 the time, centred) projected on `future` `(H, p)`, for the sums of the first h
    days, h in `horizons` (at most H). Cached: a handful of designs recur."""
    horizons = np.asarray(horizons, dtype=np.int64)
    key = design.tobytes() + future.tobytes() + horizons.tobytes()
    if key in _CACHE:
        return _CACHE[key]
    length = design.shape[0]
    reach = int(horizons.max())
    size = length + reach
    pseudo_inverse = np.linalg.pinv(design)  # (p, L)
    residual_maker = np.eye(length) - design @ pseudo_inverse
    ahead = future[:reach]
    pivoted = ahead.copy()
    pivoted[:, 1] = design[-1, 1]  # the slope dropped: the last day's level continues
    in_sum = np.arange(reach)[None, :] < horizons[:, None]  # (K, reach)

    def error_weights(rows):  # (K, size): future noise minus what the fit projects for it
        weights = np.zeros((horizons.size, size))
        weights[:, :length] = -(np.cumsum(rows, axis=0)[horizons - 1]) @ pseudo_inverse
        weights[:, length:] = in_sum
        return weights

    drop = error_weights(pivoted)
    diff = error_weights(ahead) - drop
    carried = np.zeros(size)  # the last residual: y_L - x_L' beta
    carried[:length] = -design[-1] @ pseudo_inverse
    carried[length - 1] += 1.0
    slope = np.zeros(size)
    slope[:length] = pseudo_inverse[1]
    distance = np.abs(np.arange(size)[:, None] - np.arange(size)[None, :])

    def forms(covariance) -> _Forms:
        window = residual_maker @ covariance[:length, :length] @ residual_maker
        drop_cov, diff_cov = drop @ covariance, diff @ covariance  # (K, size)
        return _Forms(
            drop=(drop_cov * drop).sum(axis=1),
            diff=(diff_cov * diff).sum(axis=1),
            own=float(carried @ covariance @ carried),
            drop_diff=(drop_cov * diff).sum(axis=1),
            drop_own=drop_cov @ carried,
            diff_own=diff_cov @ carried,
            lags=np.array([np.trace(window, offset=k) for k in range(1 + _LAGS)]),
            slope=float(slope @ covariance @ slope),
        )

    model = ErrorModel(
        ar=tuple(forms(lag_covariance(phi, size)[distance]) for phi in PHI_GRID),
        white=forms(np.eye(size)),
        carry=np.array(
            [np.cumsum(phi ** np.arange(1, reach + 1))[horizons - 1] for phi in PHI_GRID]
        ),
    )
    table, edges = _calibrate(model, design, drop, diff, carried, horizons)
    model = replace(model, calibration=table, wander_edges=edges)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[key] = model
    return model


_BINS = 10  # calibration bins of the fitted phi: [0, 0.1), ..., [0.9, 1]
_WANDER_BINS = 4  # and of the variance ratio, by quartiles of the simulated ones
_WANDER_LAG = 21
_SIMULATED = 6000  # noise series simulated to calibrate one design
_WALKS = 0.65  # of which random walks; the rest AR(1) with phi uniform on [0, 1)
_LEVEL = 0.90  # the calibration's two-sided level (the default range, z = 1.645)


def _phi_bin(phi: np.ndarray) -> np.ndarray:
    return np.clip((phi * _BINS).astype(np.int64), 0, _BINS - 1)


def _wander(residuals: np.ndarray) -> np.ndarray:
    """`(n,)` variance ratio of the residuals: the mean squared change over `_WANDER_LAG`
    days over `_WANDER_LAG` times the mean squared change over one day. About 1 for a random
    walk, 1/`_WANDER_LAG` for white noise: it tells a wandering level from noise that returns
    to its line better than the first lags do (0 for a constant row)."""
    length = residuals.shape[1]
    lag = min(_WANDER_LAG, max(length // 2, 1))
    far = np.square(residuals[:, lag:] - residuals[:, :-lag]).mean(axis=1)
    near = np.square(np.diff(residuals, axis=1)).mean(axis=1)
    return np.divide(far, lag * near, out=np.zeros_like(far), where=near > 0)


def _wander_bin(wander: np.ndarray, edges: np.ndarray | None) -> np.ndarray:
    if edges is None:
        return np.zeros(wander.shape, dtype=np.int64)
    return np.searchsorted(edges, wander)


def _calibrate(
    model: ErrorModel,
    design: np.ndarray,
    drop: np.ndarray,
    diff: np.ndarray,
    carried: np.ndarray,
    horizons: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`(phi bins, wander bins, K)` factors on the sd of each h-day sum, and the wander
    bins' inner edges, such that the `_LEVEL` range holds `_LEVEL` of the time on noise of
    the model class: AR(1) with phi uniform on [0, 1) or a random walk (`_WALKS`), plus white
    noise in half the series, around no trend (the error of a least-squares projection does
    not depend on the line it fits). The factor is the `_LEVEL` quantile of |error| / sd
    over the normal quantile, by bin (the phi bin's as a whole where a wander bin holds
    under 50 series, 1 where the phi bin does)."""
    rng = np.random.default_rng(20261208)
    length, size = design.shape[0], drop.shape[1]
    # a third white noise alone; of the rest, random walks and AR(1) (phi uniform on
    # [0, 1)) in `_WALKS` : 1 - `_WALKS`, half of them with white noise added
    plain = _SIMULATED // 3
    walks = int(_WALKS * (_SIMULATED - plain))
    phi = np.concatenate(
        [np.zeros(plain), np.ones(walks), rng.uniform(0.0, 1.0, _SIMULATED - plain - walks)]
    )
    shocks = rng.standard_normal((_SIMULATED, size))
    shocks[:plain] = 0.0
    noise = np.empty_like(shocks)
    noise[:, 0] = shocks[:, 0] / np.sqrt(np.maximum(1 - phi**2, 1.0 / size))
    for day in range(1, size):
        noise[:, day] = phi * noise[:, day - 1] + shocks[:, day]
    white = rng.uniform(0.0, 2.0, _SIMULATED) * (rng.random(_SIMULATED) < 0.5)
    white[:plain] = 1.0
    noise += white[:, None] * rng.standard_normal((_SIMULATED, size))
    # a trend under 40% of them, from invisible to clear: t-statistics uniform on [-5, 5]
    # (what shrinking a real trend costs is part of the range, not only its benefit)
    nearest = np.abs(PHI_GRID[None, :] - phi[:, None]).argmin(axis=1)
    slope_sd = np.sqrt(
        np.array([f.slope for f in model.ar])[nearest] * (np.arange(_SIMULATED) >= plain)
        + white**2 * model.white.slope
    )
    trended = rng.random(_SIMULATED) < 0.4
    slope = np.where(trended, rng.uniform(-5.0, 5.0, _SIMULATED), 0.0) * slope_sd
    noise += slope[:, None] * (np.arange(size) - (length - 1) / 2)[None, :]

    window = noise[:, :length]
    pseudo_inverse = np.linalg.pinv(design)
    residuals = window - (window @ pseudo_inverse.T) @ design.T
    fit = replace(model, calibration=None).fit(residuals)
    slope = window @ pseudo_inverse[1]
    keep = keep_of(slope, np.sqrt(fit.slope_variance))
    ramp = horizons * (horizons + 1) / 2
    moved = ((1 - keep) * slope)[:, None] * ramp
    carry = np.cumsum(fit.memory(int(horizons.max())), axis=1)[:, horizons - 1]
    error = noise @ drop.T + keep[:, None] * (noise @ diff.T) - carry * (noise @ carried)[:, None]
    sd = np.sqrt(np.maximum(fit.sum_variance(keep, moved), 1e-300))
    ratio = np.abs(error) / sd

    z = _normal_quantile(0.5 + _LEVEL / 2)
    edges = np.quantile(fit.wander, np.arange(1, _WANDER_BINS) / _WANDER_BINS)
    phi_bins, wander_bins = _phi_bin(fit.phi), _wander_bin(fit.wander, edges)
    table = np.ones((_BINS, _WANDER_BINS, horizons.size))
    for b in range(_BINS):
        in_bin = phi_bins == b
        if in_bin.sum() >= 50:
            table[b, :] = np.quantile(ratio[in_bin], _LEVEL, axis=0) / z
        for w in range(_WANDER_BINS):
            members = ratio[in_bin & (wander_bins == w)]
            if members.shape[0] >= 50:
                table[b, w] = np.quantile(members, _LEVEL, axis=0) / z
    return table, edges


def _normal_tail(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * erfc(z / sqrt(2.0))


def _normal_quantile(p: float) -> float:
    """The standard normal quantile, by bisection on erfc."""
    low, high = -10.0, 10.0
    for _ in range(80):
        middle = 0.5 * (low + high)
        if 1 - _normal_tail(middle) < p:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def t_factor(z: float, df: np.ndarray | float) -> np.ndarray:
    """Student-t quantile over the normal one for the same two-sided level (`z` the normal
    quantile), `df` degrees of freedom: exact for 1 and 2, Cornish-Fisher (four terms,
    within 1% from 3 on) above."""
    df = np.maximum(np.asarray(df, dtype=float), 1.0)
    tail = _normal_tail(z)  # P(Z > z)
    one = np.tan(np.pi * (0.5 - tail))
    two = (1 - 2 * tail) * np.sqrt(2.0 / (4 * tail * (1 - tail)))
    z2 = z * z
    series = (
        z
        + z * (z2 + 1) / (4 * df)
        + z * (5 * z2**2 + 16 * z2 + 3) / (96 * df**2)
        + z * (3 * z2**3 + 19 * z2**2 + 17 * z2 - 15) / (384 * df**3)
    )
    quantile = np.where(df < 1.5, one, np.where(df < 2.5, two, series))
    return quantile / z if z > 0 else np.ones_like(df)


__all__ = ["PHI_GRID", "TREND_T", "ErrorModel", "Fit", "error_model", "keep_of", "t_factor"]
