"""Independent pose math for the tests (Rodrigues, axis-angle, look-at), no SDK code.

Matrices are row-major lists of rows; quaternions are (w, x, y, z); camera-to-world
rotations have the camera's right, down and forward axes as columns (OpenCV).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Vec = tuple[float, float, float]
Mat = tuple[Vec, Vec, Vec]
Quat = tuple[float, float, float, float]


def unit(v: Sequence[float]) -> Vec:
    n = math.sqrt(sum(c * c for c in v))
    return (v[0] / n, v[1] / n, v[2] / n)


def cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def matmul(a: Mat, b: Mat) -> Mat:
    rows = [tuple(sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)) for i in range(3)]
    return (rows[0], rows[1], rows[2])


def matvec(m: Mat, v: Vec) -> Vec:
    return (
        sum(m[0][k] * v[k] for k in range(3)),
        sum(m[1][k] * v[k] for k in range(3)),
        sum(m[2][k] * v[k] for k in range(3)),
    )


def transpose(m: Mat) -> Mat:
    return ((m[0][0], m[1][0], m[2][0]), (m[0][1], m[1][1], m[2][1]), (m[0][2], m[1][2], m[2][2]))


def rodrigues(axis: Vec, angle: float) -> Mat:
    """Rotation matrix about ``axis`` by ``angle`` radians: I + sin K + (1 - cos) K^2."""
    x, y, z = unit(axis)
    k = ((0.0, -z, y), (z, 0.0, -x), (-y, x, 0.0))
    k2 = matmul(k, k)
    s, c = math.sin(angle), 1.0 - math.cos(angle)
    rows = [
        tuple((1.0 if i == j else 0.0) + s * k[i][j] + c * k2[i][j] for j in range(3))
        for i in range(3)
    ]
    return (rows[0], rows[1], rows[2])


def axis_angle_quat(axis: Vec, angle: float) -> Quat:
    x, y, z = unit(axis)
    s = math.sin(angle / 2)
    return (math.cos(angle / 2), x * s, y * s, z * s)


def quat_mul(a: Quat, b: Quat) -> Quat:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def quat_matrix(q: Quat) -> Mat:
    """Matrix of a unit quaternion, built by rotating the basis vectors (q v q*)."""
    conj = (q[0], -q[1], -q[2], -q[3])
    columns = []
    for basis in ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)):
        r = quat_mul(quat_mul(q, (0.0, *basis)), conj)
        columns.append((r[1], r[2], r[3]))
    return transpose((columns[0], columns[1], columns[2]))


def matrix_quat(m: Mat) -> Quat:
    """Quaternion of a rotation matrix (sign arbitrary)."""
    trace = m[0][0] + m[1][1] + m[2][2]
    if trace > 0:
        s = math.sqrt(trace + 1.0) * 2
        return ((s / 4), (m[2][1] - m[1][2]) / s, (m[0][2] - m[2][0]) / s, (m[1][0] - m[0][1]) / s)
    i = max(range(3), key=lambda d: m[d][d])
    j, k = (i + 1) % 3, (i + 2) % 3
    s = math.sqrt(1.0 + m[i][i] - m[j][j] - m[k][k]) * 2
    q = [0.0, 0.0, 0.0, 0.0]
    q[0] = (m[k][j] - m[j][k]) / s
    q[1 + i] = s / 4
    q[1 + j] = (m[j][i] + m[i][j]) / s
    q[1 + k] = (m[k][i] + m[i][k]) / s
    return (q[0], q[1], q[2], q[3])


def look_at(eye: Vec, target: Vec, up: Vec = (0.0, 0.0, 1.0)) -> Mat:
    """Camera-to-world rotation of a camera at ``eye`` looking at ``target`` (z-up world)."""
    forward = unit(tuple(t - e for t, e in zip(target, eye, strict=True)))
    right = unit(cross(forward, up))
    down = cross(forward, right)
    return transpose((right, down, forward))


def re10k_line(stamp: int, camera_to_world: Mat, centre: Vec, *, fx: float = 0.9) -> str:
    """One RealEstate10K pose line for a camera with this rotation and centre."""
    r = transpose(camera_to_world)  # world-to-camera
    t = matvec(r, centre)
    numbers = [fx, fx * 16 / 9, 0.5, 0.5, 0.0, 0.0]
    for i in range(3):
        numbers += [r[i][0], r[i][1], r[i][2], -t[i]]
    return " ".join([str(stamp), *(f"{v:.12f}" for v in numbers)])


def max_abs_diff(a: Mat, b: Mat) -> float:
    return max(abs(a[i][j] - b[i][j]) for i in range(3) for j in range(3))


#: Camera-to-world rotation of a camera looking along world +y, level (z up).
LOOK_NORTH: Mat = ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, -1.0, 0.0))
