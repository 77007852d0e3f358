r"""Winograd minimal filtering: conv2d with 3x3 kernels at stride 1 in fewer multiplies.

``F(m x m, 3 x 3)`` (Lavin and Gray, "Fast algorithms for convolutional neural
networks", 2016) computes an ``m x m`` tile of outputs from an
``alpha x alpha`` tile of inputs, ``alpha = m + 2``, as

.. math::

    Y = A^T \Big[ \sum_c (G g_c G^T) \odot (B^T d_c B) \Big] A

with ``g_c`` the 3x3 kernel and ``d_c`` the input tile of channel ``c``. The
``alpha^2`` tile positions ``xi`` are independent: after the transforms, the
sum over channels is one GEMM per position, ``M[xi] = U[xi] V[xi]`` with
``U[xi]`` (C_out, C_in) and ``V[xi]`` (C_in, tiles). That is ``alpha^2 / m^2``
multiplies per output instead of 9: 16/4 = 4 for F(2x2, 3x3), 36/16 = 2.25 for
F(4x4, 3x3).

Here every transform is itself a GEMM with the Kronecker product of the 1-d
matrices (``B^T d B`` is ``(B^T (x) B^T) vec(d)``), so that the whole
algorithm is five BLAS calls and three strided copies (pad, gather the
overlapping tiles, scatter the output tiles), each a single NumPy (or CuPy)
call over the whole batch:

* input: the zero-padded input, channel-major ``(C, N, Hp, Wp)``, gathered into
  tiles ``(C, N, alpha, alpha, th, tw)``; one batched GEMM with ``B^T (x) B^T``
  writes ``V`` as ``(alpha^2, C, N th tw)``;
* filter: ``U = (G (x) G) vec(g)``, ``(alpha^2, C_out, C_in)``;
* product: ``M = U V``, one GEMM per tile position, ``(alpha^2, C_out, P)``;
* output: ``(A^T (x) A^T) M``, scattered (bias added on the way) into NCHW.

Backward, both at stride 1:

* ``dx`` is the correlation of ``dout`` (padded by ``2 - p``) with the kernel
  flipped in space and transposed in channels: the same forward.
* ``dw`` is the adjoint of the forward in ``g``: with ``V`` the input
  transform of the forward and ``dY = A dout_tile A^T``,
  ``dg = G^T [\sum_{tiles} dY \odot V] G``: one GEMM per tile position that
  reduces over every tile of the batch, ``dU[xi] = dY[xi] V[xi]^T``.

Accuracy: Winograd is exact in exact arithmetic; in floating point its error
is bounded by the same computation run on absolute values
(:func:`absolute_bound`): ``|y_hat - y| <= f u E`` to first order, with
``E = |A^T| [\sum_c (|G| |g_c| |G^T|) \odot (|B^T| |d_c| |B|)] |A|``, ``u``
the unit roundoff and ``f`` the summed lengths of the dot products the result
went through (:func:`error_factors`: ``2 alpha^2 + r^2 + C_in + 3`` for the
forward, 84 + C_in for F(4x4, 3x3)). ``E`` exceeds the direct sum of
``|terms|`` over the tile's window by at most
:attr:`WinogradTiling.amplification` (114 for F(4x4, 3x3), 4 for
F(2x2, 3x3)), which is why F(4x4) costs about two decimal digits in
float32 against a direct sum's worst case.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from backends.array import blocked
from backends.array.workspace import Workspace, matmul_into, scratch

__all__ = [
    "F2X2_3X3",
    "F4X4_3X3",
    "TILINGS",
    "WinogradTiling",
    "absolute_bound",
    "conv2d_backward",
    "conv2d_forward",
    "correlate",
    "error_factors",
    "tile_counts",
]

Array = Any


class WinogradTiling:
    """The matrices of ``F(m x m, r x r)``.

    ``B^T`` (alpha, alpha), ``G`` (alpha, r) and ``A^T`` (m, alpha), with
    ``alpha = m + r - 1``.
    """

    def __init__(self, name: str, bt: Any, g: Any, at: Any) -> None:
        self.name = name
        self.bt = np.asarray(bt, dtype=np.float64)
        self.g = np.asarray(g, dtype=np.float64)
        self.at = np.asarray(at, dtype=np.float64)
        self.m, self.alpha = self.at.shape
        self.r = self.g.shape[1]
        if (
            self.bt.shape != (self.alpha, self.alpha)
            or self.alpha != self.m + self.r - 1
        ):
            raise ValueError(f"inconsistent Winograd matrices for {name}")
        #: 2-d transforms as Kronecker products, acting on row-major tiles.
        self.kron_b = np.kron(self.bt, self.bt)  # (alpha^2, alpha^2)
        self.kron_g = np.kron(self.g, self.g)  # (alpha^2, r^2)
        self.kron_a = np.kron(self.at, self.at)  # (m^2, alpha^2)
        # A tile position whose output transform is 1 at every output pixel
        # (a column of A^T of ones, twice): a bias added to M there reaches
        # every output exactly once, with no pass over the output.
        ones = [j for j in range(self.alpha) if np.all(self.at[:, j] == 1)]
        self.bias_position = ones[0] * self.alpha + ones[0] if ones else None
        self._constants: dict[tuple[str, str], tuple[Array, Array, Array]] = {}

    def __repr__(self) -> str:
        return f"<WinogradTiling {self.name}>"

    @property
    def amplification(self) -> float:
        """Largest ratio of the absolute-value bound ``E`` to a direct ``sum |terms|``.

        Per dimension, output ``t`` takes input ``i`` times kernel tap ``j``
        with weight ``sum_xi |A^T[t, xi]| |G[xi, j]| |B^T[xi, i]|`` (the direct
        sum weighs it 1 where ``i = t + j``, else 0): the largest such weight,
        squared for two dimensions.
        """
        weights = np.einsum(
            "tx,xj,xi->tij", np.abs(self.at), np.abs(self.g), np.abs(self.bt)
        )
        return float(weights.max()) ** 2

    def constants(self, xp: Any, dtype: Any) -> tuple[Array, Array, Array]:
        """``(B^T (x) B^T, G (x) G, A^T (x) A^T)`` as ``dtype`` arrays of ``xp``."""
        key = (getattr(xp, "__name__", str(id(xp))), np.dtype(dtype).str)
        cached = self._constants.get(key)
        if cached is None:
            cached = tuple(
                xp.asarray(matrix.astype(dtype))
                for matrix in (self.kron_b, self.kron_g, self.kron_a)
            )
            self._constants[key] = cached
        return cached


#: F(2x2, 3x3): interpolation points 0, 1, -1 and infinity; every entry of B
#: and A is 0 or +-1.
F2X2_3X3 = WinogradTiling(
    "F(2x2, 3x3)",
    bt=[[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    g=[[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    at=[[1, 1, 1, 0], [0, 1, -1, -1]],
)

#: F(4x4, 3x3): points 0, +-1, +-2 and infinity (Lavin and Gray's matrices).
F4X4_3X3 = WinogradTiling(
    "F(4x4, 3x3)",
    bt=[
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    g=[
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    at=[
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, 0],
        [0, 1, 1, 4, 4, 0],
        [0, 1, -1, 8, -8, 1],
    ],
)

#: The tilings by output tile size ``m``.
TILINGS: dict[int, WinogradTiling] = {2: F2X2_3X3, 4: F4X4_3X3}


def tile_counts(
    out_height: int, out_width: int, tiling: WinogradTiling
) -> tuple[int, int]:
    """Tiles per column and per row covering an ``out_height x out_width`` output."""
    return -(-out_height // tiling.m), -(-out_width // tiling.m)


def input_transform(
    backend: Any,
    x: Array,
    pads: tuple[int, int],
    tiles: tuple[int, int],
    tiling: WinogradTiling,
    workspace: Workspace | None = None,
) -> Array:
    """``V = (B^T (x) B^T) d`` for every tile: ``(alpha^2, C, N th tw)``.

    ``x`` (N, C, H, W) is read as if padded by ``pads = (top, left)`` rows and
    columns of zeros (negative: cropped) and by zeros on the bottom and right
    as far as the tiles reach. The two copies (pad, gather) run split over the
    channels on ``backend``'s threads, the transform is one batched GEMM.
    Intermediates and ``V`` come from ``workspace`` (fresh ones without it).
    """
    xp = backend.xp
    ws = workspace if workspace is not None else Workspace(xp)
    n, c, h, w = x.shape
    th, tw = tiles
    m, alpha = tiling.m, tiling.alpha
    hb, wb = th * m + alpha - m, tw * m + alpha - m
    top, left = pads
    padded = ws.empty("padded", (c, n, hb, wb), x.dtype)
    r0, r1 = max(0, top), min(hb, top + h)
    c0, c1 = max(0, left), min(wb, left + w)
    parts = backend._split(c, padded.size)
    meets = r1 > r0 and c1 > c0  # whether the tiles meet the input at all
    if meets:
        i0, j0 = r0 - top, c0 - left
        source = x[:, :, i0 : i0 + r1 - r0, j0 : j0 + c1 - c0].transpose(1, 0, 2, 3)

    def pad(part: slice) -> None:
        target = padded[part]
        if not meets:
            target[...] = 0
            return
        target[:, :, :r0] = 0
        target[:, :, r1:] = 0
        target[:, :, r0:r1, :c0] = 0
        target[:, :, r0:r1, c1:] = 0
        target[:, :, r0:r1, c0:c1] = source[part]

    backend._parallel([functools.partial(pad, part) for part in parts])
    s_c, s_n, s_h, s_w = padded.strides
    windows = backend._as_strided(
        padded,
        (c, n, alpha, alpha, th, tw),
        (s_c, s_n, s_h, s_w, m * s_h, m * s_w),
    )
    # Tile positions before tiles: each (alpha^2, th tw) slab is one GEMM operand.
    gathered = ws.empty("gathered", (c, n, alpha, alpha, th, tw), x.dtype)

    def gather(part: slice) -> None:
        gathered[part] = windows[part]

    backend._parallel([functools.partial(gather, part) for part in parts])
    kron_b = tiling.constants(xp, x.dtype)[0]
    v = ws.empty("transformed", (alpha * alpha, c, n * th * tw), x.dtype)
    # Batched over (C, N): (alpha^2, alpha^2) @ (alpha^2, th tw), written
    # straight into the position-major layout the product GEMM wants.
    matmul_into(
        xp,
        kron_b,
        gathered.reshape(c * n, alpha * alpha, th * tw),
        v.reshape(alpha * alpha, c * n, th * tw).transpose(1, 0, 2),
    )
    return v


def filter_transform(xp: Any, w: Array, tiling: WinogradTiling) -> Array:
    """``U = (G (x) G) vec(g)`` for every (C_out, C_in) pair: ``(alpha^2, K, C)``."""
    k, c = w.shape[:2]
    kron_g = tiling.constants(xp, w.dtype)[1]
    u = xp.matmul(kron_g, w.reshape(k * c, tiling.r * tiling.r).T)
    return u.reshape(tiling.alpha * tiling.alpha, k, c)


def output_transform(
    backend: Any,
    m_product: Array,
    tiling: WinogradTiling,
    tiles: tuple[int, int],
    bias: Array | None,
    y: Array,
    workspace: Workspace | None = None,
) -> Array:
    """``y[...] = (A^T (x) A^T) M`` scattered to NCHW ``(N, K, H_out, W_out)`` (+ bias).

    ``M`` is overwritten where the bias is folded in (see ``bias_position``).
    The scatter runs as one copy per output column of the tile (per output
    pixel where the tiles overhang the output), on ``backend``'s threads.
    """
    xp = backend.xp
    ws = workspace if workspace is not None else Workspace(xp)
    alpha2, k, _ = m_product.shape
    m = tiling.m
    th, tw = tiles
    batch, _, ho, wo = y.shape
    kron_a = tiling.constants(xp, m_product.dtype)[2]
    b = None if bias is None else bias.reshape(1, k, 1, 1)
    if b is not None and tiling.bias_position is not None:
        m_product[tiling.bias_position] += bias.reshape(k, 1)
        b = None
    # (m, m, K, N, th, tw): output pixel (r, c) of every tile.
    z = ws.empty("untransformed", (m, m, k, batch, th, tw), m_product.dtype)
    matmul_into(xp, kron_a, m_product.reshape(alpha2, -1), z.reshape(m * m, -1))

    def scatter(row: int | slice, col: int) -> None:
        if isinstance(row, slice):  # every row of the tile at once
            target = y.reshape(batch, k, th, m, tw, m)[..., col]
            source = z[:, col].transpose(2, 1, 3, 0, 4)  # (N, K, th, m, tw)
            bias_view = None if b is None else b[..., None]
        else:
            target = y[:, :, row::m, col::m]
            source = z[row, col, :, :, : target.shape[2], : target.shape[3]]
            source = source.transpose(1, 0, 2, 3)
            bias_view = b
        if bias_view is None:
            target[...] = source
        else:
            xp.add(source, bias_view, out=target)

    if ho == th * m and wo == tw * m:
        pieces = [(slice(None), col) for col in range(m)]
    else:
        pieces = [(row, col) for row in range(m) for col in range(m)]
    calls = [functools.partial(scatter, *piece) for piece in pieces]
    backend._parallel(calls, y.size)
    return y


def _output_tiles(
    backend: Any,
    dout: Array,
    tiling: WinogradTiling,
    tiles: tuple[int, int],
    workspace: Workspace | None = None,
) -> Array:
    """``dout`` (N, K, H_out, W_out) as zero-padded tiles ``(m^2, K, N th tw)``."""
    ws = workspace if workspace is not None else Workspace(backend.xp)
    n, k, ho, wo = dout.shape
    m = tiling.m
    th, tw = tiles
    shape = (m, m, k, n, th, tw)
    covered = ho == th * m and wo == tw * m
    out = (
        ws.empty("tiles", shape, dout.dtype)
        if covered
        else ws.zeros("tiles", shape, dout.dtype)
    )

    def gather(row: int, col: int) -> None:
        source = dout[:, :, row::m, col::m]
        out[row, col, :, :, : source.shape[2], : source.shape[3]] = source.transpose(
            1, 0, 2, 3
        )

    calls = [functools.partial(gather, r, c) for r in range(m) for c in range(m)]
    backend._parallel(calls, out.size)
    return out.reshape(m * m, k, n * th * tw)


def chunk_images(
    batch: int,
    per_image_bytes: int,
    per_image_columns: int,
    chunk_bytes: int | None,
    min_columns: int = 1,
    parts: int = 1,
) -> int:
    """Images per chunk: as many as fit ``chunk_bytes`` of workspace.

    At most ``batch / parts`` (rounded up), so that there are at least
    ``parts`` chunks for threads to share; but at least enough for
    ``min_columns`` GEMM columns, at least 1, at most ``batch``. The whole
    batch when ``chunk_bytes`` is ``None``.
    """
    if chunk_bytes is None:
        return batch
    fitting = min(chunk_bytes // max(1, per_image_bytes), -(-batch // max(1, parts)))
    needed = -(-min_columns // max(1, per_image_columns))
    return max(1, min(batch, max(fitting, needed)))


def _chunk(batch: int, tiles: tuple[int, int], per_image_bytes: int, chunk: Any) -> int:
    """``chunk_images`` for Winograd: ``chunk`` is ``(bytes, min_columns, parts)``.

    ``None``: the whole batch at once.
    """
    chunk_bytes, min_columns, parts = chunk if chunk is not None else (None, 1, 1)
    return chunk_images(
        batch, per_image_bytes, tiles[0] * tiles[1], chunk_bytes, min_columns, parts
    )


def _image_bytes(
    tiling: WinogradTiling, tiles: tuple[int, int], c: int, k: int, itemsize: int
) -> int:
    """Workspace per image: gathered tiles and V (C channels), M and Z (K)."""
    count = tiles[0] * tiles[1]
    return (
        count
        * (2 * tiling.alpha**2 * c + (tiling.alpha**2 + tiling.m**2) * k)
        * itemsize
    )


def correlate(
    backend: Any,
    x: Array,
    w: Array,
    bias: Array | None,
    pads: tuple[int, int],
    out_size: tuple[int, int],
    tiling: WinogradTiling,
    chunk: tuple[int | None, int, int] | None = None,
) -> Array:
    """Cross-correlation of ``x`` with 3x3 ``w`` at stride 1, padded by ``pads``.

    ``pads`` are the rows and columns of zeros before the input (negative:
    that many cropped); ``out_size`` is the output's (H_out, W_out). The batch
    goes in chunks of at most ``chunk = (bytes, min_columns, parts)`` of
    workspace (see :func:`chunk_images`), so that each chunk's transforms and GEMMs
    stay in cache; the chunks run on ``backend``'s threads
    (:meth:`~backends.array.core.ArrayCore._blas_tasks`).
    """
    plan = _Correlation(backend, x, w, bias, pads, out_size, tiling, chunk)
    with backend._blas_tasks(len(plan.starts)) as run:
        run(plan.tasks())
    return plan.y


class _Correlation:
    """:func:`correlate` as chunk tasks: ``y`` is written once they have run."""

    def __init__(
        self,
        backend: Any,
        x: Array,
        w: Array,
        bias: Array | None,
        pads: tuple[int, int],
        out_size: tuple[int, int],
        tiling: WinogradTiling,
        chunk: tuple[int | None, int, int] | None,
    ) -> None:
        xp = self.xp = backend.xp
        n, c = x.shape[:2]
        k = w.shape[0]
        self.x, self.w, self.bias, self.pads, self.tiling = x, w, bias, pads, tiling
        self.tiles = tile_counts(*out_size, tiling)
        self.dtype = xp.result_type(x.dtype, w.dtype)
        self.y = xp.empty((n, k, *out_size), dtype=self.dtype)
        per_image = _image_bytes(tiling, self.tiles, c, k, self.y.itemsize)
        self.step = _chunk(n, self.tiles, per_image, chunk)
        self.starts = range(0, n, self.step)

    def tasks(self) -> list:
        """The chunk tasks; the filter transform, a GEMM, runs now."""
        w = self.w.astype(self.dtype, copy=False)
        u = filter_transform(self.xp, w, self.tiling)
        return [functools.partial(self._run_chunk, u, start) for start in self.starts]

    def _run_chunk(self, u: Array, start: int, worker: Any) -> None:
        xp, tiling, tiles, dtype = self.xp, self.tiling, self.tiles, self.dtype
        part = slice(start, start + self.step)
        with scratch(xp) as ws:
            x = self.x[part].astype(dtype, copy=False)
            v = input_transform(worker, x, self.pads, tiles, tiling, ws)
            m_product = ws.empty("product", (u.shape[0], u.shape[1], v.shape[2]), dtype)
            matmul_into(xp, u, v, m_product)  # (alpha^2, K, P)
            y = self.y[part]
            output_transform(worker, m_product, tiling, tiles, self.bias, y, ws)


def conv2d_forward(
    backend: Any,
    x: Array,
    w: Array,
    b: Array | None,
    g: Any,
    tiling: WinogradTiling,
    chunk: tuple[int | None, int, int] | None = None,
) -> Array:
    """conv2d (3x3, stride 1, any padding) with ``tiling``; ``g`` the ConvGeometry."""
    out_size = (g.out_height, g.out_width)
    return correlate(backend, x, w, b, g.padding, out_size, tiling, chunk)


def conv2d_backward(
    backend: Any,
    dout: Array,
    x: Array,
    w: Array,
    g: Any,
    tiling: WinogradTiling,
    chunk: tuple[int | None, int, int] | None = None,
) -> tuple[Array, Array]:
    """``(dx, dw)`` of :func:`conv2d_forward`."""
    xp = backend.xp
    ph, pw = g.padding
    # dx: dout padded by 2 - p (cropped where p > 2) against the flipped,
    # channel-transposed kernel; its output is exactly (H, W).
    w_flipped = xp.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    dx_plan = _Correlation(
        backend,
        dout,
        w_flipped,
        None,
        (2 - ph, 2 - pw),
        (g.height, g.width),
        tiling,
        chunk,
    )
    dx = dx_plan.y
    # dw: the adjoint of the forward in the kernel, accumulated over chunks.
    tiles = tile_counts(g.out_height, g.out_width, tiling)
    _, kron_g, kron_a = tiling.constants(xp, dout.dtype)
    n, c, k = g.batch, g.in_channels, g.out_channels
    step = _chunk(n, tiles, _image_bytes(tiling, tiles, c, k, dx.itemsize), chunk)
    starts = range(0, n, step)

    def term(index: int, worker: Any) -> Array:
        start = starts[index]
        part = slice(start, start + step)
        with scratch(xp) as ws:
            v = input_transform(worker, x[part], g.padding, tiles, tiling, ws)
            dy_tiles = _output_tiles(worker, dout[part], tiling, tiles, ws)
            m2, _, p = dy_tiles.shape
            dy_hat = ws.empty("tiles_hat", (tiling.alpha**2, k, p), dy_tiles.dtype)
            matmul_into(
                xp, kron_a.T, dy_tiles.reshape(m2, k * p), dy_hat.reshape(-1, k * p)
            )
            return xp.matmul(dy_hat, v.transpose(0, 2, 1))  # (alpha^2, K, C)

    dw_tasks, dw_sum = blocked.grouped_sum(len(starts), term)
    r = tiling.r
    with backend._blas_tasks(len(dw_tasks) + len(dx_plan.starts)) as run:
        # dw's tasks first: they are the longer ones.
        run(dw_tasks + dx_plan.tasks())
        du = dw_sum()
        if du is None:  # an empty batch
            du = xp.zeros((tiling.alpha**2, k, c), dtype=dx.dtype)
        dw = xp.matmul(kron_g.T, du.reshape(du.shape[0], k * c)).reshape(r, r, k, c)
    return dx, xp.ascontiguousarray(dw.transpose(2, 3, 0, 1))


class _Host:
    """The least of a backend :func:`correlate` needs: NumPy, one thread."""

    xp = np

    @staticmethod
    def _as_strided(a: Array, shape: tuple, strides: tuple) -> Array:
        return np.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)

    @staticmethod
    def _split(length: int, elements: int) -> list[slice]:
        return [slice(0, length)]

    @staticmethod
    def _parallel(calls: list, elements: int | None = None) -> None:
        for call in calls:
            call()

    @contextlib.contextmanager
    def _blas_tasks(self, count: int) -> Iterator[Callable[[list], None]]:
        def run(tasks: list) -> None:
            for task in tasks:
                task(self)

        yield run


def absolute_bound(
    x: np.ndarray,
    w: np.ndarray,
    dout: np.ndarray,
    padding: tuple[int, int],
    tiling: WinogradTiling,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``E`` for y, dx and dw: the algorithm run in float64 on absolute values.

    Every matrix, the input, the kernel and the upstream gradient replaced by
    its absolute value: each intermediate of this run bounds the magnitude of
    the corresponding intermediate of the real one, so the rounding error of
    the real run is at most ``(sum of the dot-product lengths) u E`` to first
    order (see the module docstring). Plain NumPy, for the tests.
    """
    absolute = WinogradTiling(
        f"|{tiling.name}|", np.abs(tiling.bt), np.abs(tiling.g), np.abs(tiling.at)
    )

    host = _Host()
    x, w, dout = (np.abs(np.asarray(a, dtype=np.float64)) for a in (x, w, dout))
    h, width = x.shape[2:]
    out_size = dout.shape[2:]
    y = correlate(host, x, w, None, padding, out_size, absolute)
    w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    pads = (2 - padding[0], 2 - padding[1])
    dx = correlate(host, dout, w_flipped, None, pads, (h, width), absolute)
    tiles = tile_counts(*out_size, absolute)
    v = input_transform(host, x, padding, tiles, absolute)
    dy_tiles = _output_tiles(host, dout, absolute, tiles)
    m2, k, p = dy_tiles.shape
    dy_hat = (absolute.kron_a.T @ dy_tiles.reshape(m2, k * p)).reshape(-1, k, p)
    du = np.matmul(dy_hat, v.transpose(0, 2, 1))
    r = absolute.r
    dw = (absolute.kron_g.T @ du.reshape(du.shape[0], -1)).reshape(r, r, k, -1)
    return y, dx, np.ascontiguousarray(dw.transpose(2, 3, 0, 1))


def error_factors(
    tiling: WinogradTiling, in_channels: int, out_channels: int, tiles: int
) -> dict[str, int]:
    """The rounding factor ``f`` of ``|error| <= f u E`` for y, dx and dw.

    ``f`` adds up the lengths of the sums each result went through (a sum
    of ``n`` terms errs by at most ``n u sum |terms|``, Higham eq. 3.5, and
    the errors of the stages add to first order):

    * y: ``alpha^2`` (input transform) + ``r^2`` (filter transform) + 1
      (product) + ``C_in`` (sum over channels) + ``alpha^2`` (output
      transform) + 2 (the constants' rounding, the bias);
    * dx: the same forward with ``C_out`` channels;
    * dw: ``alpha^2`` (input) + ``m^2`` (dout transform) + 1 + ``tiles``
      (sum over every tile of the batch) + ``alpha^2`` (``G^T`` transform)
      + 1.
    """
    alpha2, r2, m2 = tiling.alpha**2, tiling.r**2, tiling.m**2
    return {
        "y": 2 * alpha2 + r2 + in_channels + 3,
        "dx": 2 * alpha2 + r2 + out_channels + 3,
        "dw": 2 * alpha2 + m2 + tiles + 2,
    }
