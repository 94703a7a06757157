"""k-means over features and farthest-point selection of a diverse subset."""

from __future__ import annotations

import numpy as np
import scipy.sparse


def kmeans(x: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Seeded k-means (k-means++ init, Lloyd iterations): ``(labels, centers)``."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    k = max(1, min(k, n))
    centers = [x[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        if d2.sum() <= 0:
            break  # fewer distinct points than k
        centers.append(x[rng.choice(n, p=d2 / d2.sum())])
    c = np.asarray(centers)
    labels = np.zeros(n, dtype=np.int64)
    for step in range(iterations):
        distances = (x**2).sum(1)[:, None] - 2 * x @ c.T + (c**2).sum(1)[None]
        new = np.argmin(distances, axis=1)
        if step > 0 and np.array_equal(new, labels):
            break
        labels = new
        for j in range(len(c)):
            if np.any(labels == j):
                c[j] = x[labels == j].mean(axis=0)
    return labels, c


def farthest_point_select(
    matrix: scipy.sparse.csr_matrix | np.ndarray,
    n_select: int,
    groups: np.ndarray | None = None,
    seed: int = 0,
    progress: bool = False,
) -> list[int]:
    """Greedy max-min (farthest-point) selection on L2-normalised rows, distance ``1 - cosine``.

    Starts from a seeded random row and repeatedly adds the row farthest from everything chosen
    (a 2-approximation of the max-min-distance subset). Rows of an already chosen ``groups`` id
    (exact duplicates) are only taken once every group is represented, so the result never repeats
    a row while distinct rows remain.
    """
    from tqdm.auto import tqdm

    n = matrix.shape[0]
    n_select = min(n_select, n)
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if n_select <= 0:
        return []
    distance = np.full(n, np.inf)
    taken = np.zeros(n, dtype=bool)
    group_taken = np.zeros(int(groups.max()) + 1, dtype=bool)
    chosen = [int(np.random.default_rng(seed).integers(n))]
    with tqdm(total=n_select, initial=1, desc="select", unit="row", disable=not progress) as bar:
        while len(chosen) < n_select:
            last = chosen[-1]
            taken[last] = True
            group_taken[groups[last]] = True
            vector = matrix[last].toarray().ravel() if scipy.sparse.issparse(matrix) else matrix[last]
            distance = np.minimum(distance, np.clip(1.0 - np.asarray(matrix @ vector).ravel(), 0.0, None))
            # a row of a new group always beats a repeat: offset above the largest distance (2)
            score = distance + np.where(group_taken[groups], 0.0, 3.0)
            score[taken] = -np.inf
            chosen.append(int(np.argmax(score)))
            bar.update()
    return chosen
