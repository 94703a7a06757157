"""k-means over features (scikit-learn) and farthest-point selection of a diverse subset."""

from __future__ import annotations

import numpy as np
import scipy.sparse


def kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's seeded ``KMeans`` (k-means++ init, the best of ``n_init`` runs): ``(labels, centers)``.

    ``k`` is capped at the number of distinct rows (more clusters than points cannot be told apart).
    The hand-written single k-means++ run this replaced could stop in a local optimum (on four
    separated blobs it found clusters of 4, 11, 22 and 23 points); the best of ten runs finds the
    blobs (``tests/analysis/test_data_report.py``).
    """
    from sklearn.cluster import KMeans

    x = np.asarray(x, dtype=np.float64)
    k = max(1, min(k, len(np.unique(x, axis=0))))
    model = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
    return model.labels_.astype(np.int64), model.cluster_centers_


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
