"""Small pure-Python rotation algebra (no numpy): 3-vectors, 3x3 matrices, quaternions.

Quaternions are ``(w, x, y, z)`` tuples (Hamilton convention, ``w`` the scalar part);
matrices are row-major tuples of rows.
"""

from __future__ import annotations

import math
from typing import TypeAlias

Vec3: TypeAlias = tuple[float, float, float]
Quat: TypeAlias = tuple[float, float, float, float]
Mat3: TypeAlias = tuple[Vec3, Vec3, Vec3]

_UNIT_EPSILON = 1e-15

IDENTITY: Mat3 = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def quat_norm(q: Quat) -> float:
    """Euclidean length of ``q``."""
    return math.hypot(*q)


def quat_canonical(q: Quat) -> Quat:
    """``q`` scaled to unit length (to 1e-15), with the sign chosen so that ``w > 0``.

    ``q`` and ``-q`` are the same rotation; fixing the sign makes stored orientations
    (and so annotation hashes) unique. When ``w == 0`` the first non-zero of ``x, y, z``
    is made positive. ``q`` must not be zero.
    """
    n = quat_norm(q)
    # Dividing by a norm that is already 1 up to rounding could still change the last
    # bit; leaving such a quaternion as it is makes normalising idempotent, so a stored
    # annotation validates to exactly itself (and keeps its hash).
    w, x, y, z = q if abs(n - 1.0) <= _UNIT_EPSILON else (c / n for c in q)
    for c in (w, x, y, z):
        if c != 0.0:
            if c < 0.0:
                w, x, y, z = -w, -x, -y, -z
            break
    # -0.0 and 0.0 are the same number but not the same JSON text.
    return (w + 0.0, x + 0.0, y + 0.0, z + 0.0)


def quat_multiply(a: Quat, b: Quat) -> Quat:
    """The Hamilton product ``a * b`` (apply ``b`` first, then ``a``)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def quat_conjugate(q: Quat) -> Quat:
    """The inverse rotation of a unit quaternion."""
    w, x, y, z = q
    return (w, -x, -y, -z)


def quat_to_matrix(q: Quat) -> Mat3:
    """Rotation matrix of a unit quaternion."""
    w, x, y, z = q
    return (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )


def matrix_to_quat(m: Mat3) -> Quat:
    """Canonical unit quaternion of a rotation matrix (Shepperd's method, stable)."""
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = m
    trace = m00 + m11 + m22
    if trace >= max(m00, m11, m22):
        s = 2.0 * math.sqrt(max(1.0 + trace, 0.0))
        q = (0.25 * s, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s)
    elif m00 >= m11 and m00 >= m22:
        s = 2.0 * math.sqrt(max(1.0 + m00 - m11 - m22, 0.0))
        q = ((m21 - m12) / s, 0.25 * s, (m01 + m10) / s, (m02 + m20) / s)
    elif m11 >= m22:
        s = 2.0 * math.sqrt(max(1.0 + m11 - m00 - m22, 0.0))
        q = ((m02 - m20) / s, (m01 + m10) / s, 0.25 * s, (m12 + m21) / s)
    else:
        s = 2.0 * math.sqrt(max(1.0 + m22 - m00 - m11, 0.0))
        q = ((m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, 0.25 * s)
    return quat_canonical(q)


def quat_rotate(q: Quat, v: Vec3) -> Vec3:
    """``v`` rotated by the unit quaternion ``q``."""
    m = quat_to_matrix(q)
    return mat_vec(m, v)


def quat_to_rotation_vector(q: Quat) -> Vec3:
    """Axis times angle (radians, in [0, pi]) of a unit quaternion."""
    w, x, y, z = q
    if w < 0.0:
        w, x, y, z = -w, -x, -y, -z
    sin_half = math.hypot(x, y, z)
    if sin_half < 1e-12:
        # First order: q ~ (1, v/2), so the rotation vector is 2 * (x, y, z).
        return (2.0 * x, 2.0 * y, 2.0 * z)
    angle = 2.0 * math.atan2(sin_half, w)
    scale = angle / sin_half
    return (x * scale, y * scale, z * scale)


def quat_midpoint(a: Quat, b: Quat) -> Quat:
    """The rotation halfway between ``a`` and ``b`` along the shorter arc (slerp at 0.5)."""
    if sum(p * q for p, q in zip(a, b, strict=True)) < 0.0:
        b = (-b[0], -b[1], -b[2], -b[3])
    mid = (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])
    if quat_norm(mid) < 1e-12:
        return a
    return quat_canonical(mid)


def mat_vec(m: Mat3, v: Vec3) -> Vec3:
    """``m @ v``."""
    return (
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    )


def transpose(m: Mat3) -> Mat3:
    """``m`` transposed."""
    return (
        (m[0][0], m[1][0], m[2][0]),
        (m[0][1], m[1][1], m[2][1]),
        (m[0][2], m[1][2], m[2][2]),
    )


def determinant(m: Mat3) -> float:
    """``det(m)``."""
    (a, b, c), (d, e, f), (g, h, i) = m
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def orthonormality_error(m: Mat3) -> float:
    """Largest absolute entry of ``m @ m.T - I`` (0 for an exact rotation or reflection)."""
    worst = 0.0
    for i in range(3):
        for j in range(3):
            dot = sum(m[i][k] * m[j][k] for k in range(3))
            worst = max(worst, abs(dot - (1.0 if i == j else 0.0)))
    return worst


def sub(a: Vec3, b: Vec3) -> Vec3:
    """``a - b``."""
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def norm(v: Vec3) -> float:
    """Euclidean length of ``v``."""
    return math.hypot(*v)
