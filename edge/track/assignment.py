"""Exact minimum-cost assignment with a cost threshold, in numpy (no scipy / lap)."""
from __future__ import annotations

import numpy as np

_EMPTY_PAIRS = np.zeros((0, 2), np.int64)


def linear_assignment(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal matching of rows to columns using only pairs with cost <= thresh.

    Minimises sum(cost - thresh) over the chosen pairs, i.e. the same optimum as `lap.lapjv(cost, extend_cost=True,
    cost_limit=thresh)` that ByteTrack uses: leaving a row and a column unmatched costs `thresh`. Returns
    (pairs (k, 2) of [row, col], unmatched rows, unmatched cols), pairs sorted by row.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        return _EMPTY_PAIRS, np.arange(n), np.arange(m)
    feasible = cost <= thresh  # NaN and inf are never feasible
    row_deg = feasible.sum(1)
    col_deg = feasible.sum(0)
    # A row and a column that can only reach each other form their own component: matching them is optimal.
    lone_col = np.where(row_deg == 1, feasible.argmax(1), -1)
    trivial = (lone_col >= 0) & (col_deg[np.maximum(lone_col, 0)] == 1)
    pairs = [np.stack([np.flatnonzero(trivial), lone_col[trivial]], 1)]
    rows = np.flatnonzero((row_deg > 0) & ~trivial)
    if len(rows):
        cols = np.flatnonzero(feasible[rows].any(0))
        sub = np.where(feasible[np.ix_(rows, cols)], cost[np.ix_(rows, cols)] - thresh, np.inf)
        col4row = _solve_with_dummies(sub)
        hit = col4row < len(cols)
        pairs.append(np.stack([rows[hit], cols[col4row[hit]]], 1))
    matched = np.concatenate(pairs) if len(pairs) > 1 else pairs[0]
    matched = matched[np.argsort(matched[:, 0], kind="stable")] if len(matched) else _EMPTY_PAIRS
    free_rows = np.ones(n, bool)
    free_cols = np.ones(m, bool)
    free_rows[matched[:, 0]] = False
    free_cols[matched[:, 1]] = False
    return matched.astype(np.int64), np.flatnonzero(free_rows), np.flatnonzero(free_cols)


def _solve_with_dummies(sub: np.ndarray) -> np.ndarray:
    """Column per row for [sub | zeros(n, n)]: a dummy column (index >= sub's width) means "left unmatched"."""
    n = sub.shape[0]
    return _shortest_augmenting_path(np.concatenate([sub, np.zeros((n, n))], 1))


def _shortest_augmenting_path(cost: np.ndarray) -> np.ndarray:
    """Jonker-Volgenant style shortest augmenting path (Crouse 2016) for n rows <= m cols; returns col per row.

    Every row must have a finite column (the caller's dummy columns guarantee it). Each row is added by a
    Dijkstra search over reduced costs, vectorised over columns; the duals u, v keep reduced costs >= 0.
    """
    n, m = cost.shape
    u = np.zeros(n)
    v = np.zeros(m)
    col4row = np.full(n, -1, np.int64)
    row4col = np.full(m, -1, np.int64)
    for cur in range(n):
        shortest = np.full(m, np.inf)
        path = np.full(m, -1, np.int64)
        done_rows = np.zeros(n, bool)
        done_cols = np.zeros(m, bool)
        min_val = 0.0
        i = cur
        while True:
            done_rows[i] = True
            reduced = min_val + cost[i] - u[i] - v
            better = ~done_cols & (reduced < shortest)
            path[better] = i
            shortest[better] = reduced[better]
            open_short = np.where(done_cols, np.inf, shortest)
            min_val = open_short.min()
            ties = np.flatnonzero(open_short == min_val)
            free = ties[row4col[ties] < 0]
            j = int(free[0]) if len(free) else int(ties[0])  # prefer a free column among equals: ends the search
            done_cols[j] = True
            if row4col[j] < 0:
                break
            i = int(row4col[j])
        u[cur] += min_val
        others = done_rows.copy()
        others[cur] = False
        u[others] += min_val - shortest[col4row[others]]
        v[done_cols] -= min_val - shortest[done_cols]
        while True:  # flip the alternating path back to the start row
            i = int(path[j])
            row4col[j] = i
            col4row[i], j = j, int(col4row[i])
            if i == cur:
                break
    return col4row
