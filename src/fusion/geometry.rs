//! Small, padding-free vector and quaternion types (`f32`, `#[repr(C)]`, [`bytemuck::Pod`]).
//!
//! Frames: a [`Quaternion`] `q` is the attitude of a body, i.e. the rotation that takes a vector expressed in the
//! body (sensor) frame to the same vector expressed in the earth frame: `v_earth = q.rotate(v_body)`. The crate's
//! attitude filter and simulator use an **NWU** earth frame (x north, y west, z up), as Madgwick's filter does.
//! Euler angles are the aerospace ZYX convention: `q = Rz(yaw) * Ry(pitch) * Rx(roll)`.

use core::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

/// A 3-vector of `f32` (12 bytes, no padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Vector3 {
    /// x component.
    pub x: f32,
    /// y component.
    pub y: f32,
    /// z component.
    pub z: f32,
}

impl Vector3 {
    /// The zero vector.
    pub const ZERO: Self = Self::new(0.0, 0.0, 0.0);

    /// A vector from its components.
    pub const fn new(x: f32, y: f32, z: f32) -> Self {
        Self { x, y, z }
    }

    /// Dot product.
    pub fn dot(self, o: Self) -> f32 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }

    /// Cross product `self × o`.
    pub fn cross(self, o: Self) -> Self {
        Self::new(
            self.y * o.z - self.z * o.y,
            self.z * o.x - self.x * o.z,
            self.x * o.y - self.y * o.x,
        )
    }

    /// Squared Euclidean norm.
    pub fn norm_squared(self) -> f32 {
        self.dot(self)
    }

    /// Euclidean norm.
    pub fn norm(self) -> f32 {
        libm::sqrtf(self.norm_squared())
    }

    /// The unit vector in the same direction, or `None` for a zero, tiny or non-finite vector.
    pub fn normalized(self) -> Option<Self> {
        let n = self.norm();
        if n.is_finite() && n > f32::MIN_POSITIVE {
            Some(self * (1.0 / n))
        } else {
            None
        }
    }

    /// Whether all components are finite.
    pub fn is_finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite() && self.z.is_finite()
    }

    /// Linear interpolation: `self` at `ratio = 0`, `o` at `ratio = 1`.
    pub fn lerp(self, o: Self, ratio: f32) -> Self {
        self + (o - self) * ratio
    }
}

impl Add for Vector3 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}

impl AddAssign for Vector3 {
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}

impl Sub for Vector3 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}

impl SubAssign for Vector3 {
    fn sub_assign(&mut self, o: Self) {
        *self = *self - o;
    }
}

impl Mul<f32> for Vector3 {
    type Output = Self;
    fn mul(self, s: f32) -> Self {
        Self::new(self.x * s, self.y * s, self.z * s)
    }
}

impl Neg for Vector3 {
    type Output = Self;
    fn neg(self) -> Self {
        Self::new(-self.x, -self.y, -self.z)
    }
}

/// A quaternion `w + xi + yj + zk` of `f32` (16 bytes, no padding), Hamilton convention.
///
/// Used as a unit quaternion for attitudes: `q` is the attitude of a body, i.e. the rotation that takes a vector
/// expressed in the body (sensor) frame to the same vector expressed in the earth frame:
/// `v_earth = q.rotate(v_body)`. The crate's attitude filter and simulator use an **NWU** earth frame (x north,
/// y west, z up), as Madgwick's filter does. Euler angles are the aerospace ZYX convention:
/// `q = Rz(yaw) * Ry(pitch) * Rx(roll)`.
///
/// `q` and `-q` are the same rotation; [`angle_to`](Self::angle_to), [`slerp`](Self::slerp) and
/// [`nlerp`](Self::nlerp) account for that.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Quaternion {
    /// Scalar part.
    pub w: f32,
    /// i component.
    pub x: f32,
    /// j component.
    pub y: f32,
    /// k component.
    pub z: f32,
}

impl Default for Quaternion {
    fn default() -> Self {
        Self::IDENTITY
    }
}

/// Above this `|dot|` two unit quaternions are treated as (nearly) parallel and slerp falls back to nlerp,
/// avoiding the division by `sin θ ≈ 0`.
const SLERP_NLERP_THRESHOLD: f32 = 0.9995;

impl Quaternion {
    /// The identity rotation.
    pub const IDENTITY: Self = Self::new(1.0, 0.0, 0.0, 0.0);

    /// A quaternion from its components (not normalised).
    pub const fn new(w: f32, x: f32, y: f32, z: f32) -> Self {
        Self { w, x, y, z }
    }

    /// The rotation by `angle` radians about `axis` (normalised here; a zero axis gives the identity).
    pub fn from_axis_angle(axis: Vector3, angle: f32) -> Self {
        let Some(a) = axis.normalized() else {
            return Self::IDENTITY;
        };
        let (s, c) = libm::sincosf(0.5 * angle);
        Self::new(c, a.x * s, a.y * s, a.z * s)
    }

    /// The rotation by the rotation vector `v` (axis `v/|v|`, angle `|v|` radians): the exponential map.
    pub fn from_rotation_vector(v: Vector3) -> Self {
        let angle = v.norm();
        if angle < 1e-6 {
            // Second-order expansion of the exponential map near zero.
            return Self::new(1.0 - angle * angle / 8.0, 0.5 * v.x, 0.5 * v.y, 0.5 * v.z).normalized();
        }
        Self::from_axis_angle(v, angle)
    }

    /// The attitude with the given ZYX Euler angles in radians: `Rz(yaw) * Ry(pitch) * Rx(roll)`.
    pub fn from_euler(roll: f32, pitch: f32, yaw: f32) -> Self {
        let (sr, cr) = libm::sincosf(0.5 * roll);
        let (sp, cp) = libm::sincosf(0.5 * pitch);
        let (sy, cy) = libm::sincosf(0.5 * yaw);
        Self::new(
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        )
    }

    /// ZYX Euler angles `(roll, pitch, yaw)` in radians (pitch in `[-π/2, π/2]`).
    pub fn to_euler(self) -> (f32, f32, f32) {
        let Self { w, x, y, z } = self;
        let roll = libm::atan2f(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y));
        let pitch = libm::asinf((2.0 * (w * y - z * x)).clamp(-1.0, 1.0));
        let yaw = libm::atan2f(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z));
        (roll, pitch, yaw)
    }

    /// The unit quaternion of the rotation matrix `m` (row-major, `m[row][col]`, a proper rotation).
    pub fn from_rotation_matrix(m: [[f32; 3]; 3]) -> Self {
        let trace = m[0][0] + m[1][1] + m[2][2];
        let q = if trace > 0.0 {
            let s = libm::sqrtf(trace + 1.0) * 2.0;
            Self::new(
                0.25 * s,
                (m[2][1] - m[1][2]) / s,
                (m[0][2] - m[2][0]) / s,
                (m[1][0] - m[0][1]) / s,
            )
        } else if m[0][0] > m[1][1] && m[0][0] > m[2][2] {
            let s = libm::sqrtf(1.0 + m[0][0] - m[1][1] - m[2][2]) * 2.0;
            Self::new(
                (m[2][1] - m[1][2]) / s,
                0.25 * s,
                (m[0][1] + m[1][0]) / s,
                (m[0][2] + m[2][0]) / s,
            )
        } else if m[1][1] > m[2][2] {
            let s = libm::sqrtf(1.0 + m[1][1] - m[0][0] - m[2][2]) * 2.0;
            Self::new(
                (m[0][2] - m[2][0]) / s,
                (m[0][1] + m[1][0]) / s,
                0.25 * s,
                (m[1][2] + m[2][1]) / s,
            )
        } else {
            let s = libm::sqrtf(1.0 + m[2][2] - m[0][0] - m[1][1]) * 2.0;
            Self::new(
                (m[1][0] - m[0][1]) / s,
                (m[0][2] + m[2][0]) / s,
                (m[1][2] + m[2][1]) / s,
                0.25 * s,
            )
        };
        q.normalized()
    }

    /// The rotation matrix (row-major) of this unit quaternion; it maps body vectors to earth vectors.
    pub fn to_rotation_matrix(self) -> [[f32; 3]; 3] {
        let Self { w, x, y, z } = self;
        [
            [
                1.0 - 2.0 * (y * y + z * z),
                2.0 * (x * y - w * z),
                2.0 * (x * z + w * y),
            ],
            [
                2.0 * (x * y + w * z),
                1.0 - 2.0 * (x * x + z * z),
                2.0 * (y * z - w * x),
            ],
            [
                2.0 * (x * z - w * y),
                2.0 * (y * z + w * x),
                1.0 - 2.0 * (x * x + y * y),
            ],
        ]
    }

    /// The vector part `(x, y, z)`.
    pub fn vector(self) -> Vector3 {
        Vector3::new(self.x, self.y, self.z)
    }

    /// The conjugate; the inverse rotation for a unit quaternion.
    pub fn conjugate(self) -> Self {
        Self::new(self.w, -self.x, -self.y, -self.z)
    }

    /// The 4-D dot product.
    pub fn dot(self, o: Self) -> f32 {
        self.w * o.w + self.x * o.x + self.y * o.y + self.z * o.z
    }

    /// The norm.
    pub fn norm(self) -> f32 {
        libm::sqrtf(self.dot(self))
    }

    /// Whether all components are finite.
    pub fn is_finite(self) -> bool {
        self.w.is_finite() && self.x.is_finite() && self.y.is_finite() && self.z.is_finite()
    }

    /// This quaternion scaled to unit norm; the identity for a zero, tiny or non-finite quaternion.
    pub fn normalized(self) -> Self {
        let n = self.norm();
        if n.is_finite() && n > f32::MIN_POSITIVE {
            self.scale(1.0 / n)
        } else {
            Self::IDENTITY
        }
    }

    fn scale(self, s: f32) -> Self {
        Self::new(self.w * s, self.x * s, self.y * s, self.z * s)
    }

    fn add(self, o: Self) -> Self {
        Self::new(self.w + o.w, self.x + o.x, self.y + o.y, self.z + o.z)
    }

    /// Rotates `v` by this unit quaternion (body to earth): `q v q*`.
    pub fn rotate(self, v: Vector3) -> Vector3 {
        let u = self.vector();
        let t = u.cross(v) * 2.0;
        v + t * self.w + u.cross(t)
    }

    /// Rotates `v` by the inverse of this unit quaternion (earth to body): `q* v q`.
    pub fn rotate_inverse(self, v: Vector3) -> Vector3 {
        self.conjugate().rotate(v)
    }

    /// The angle in radians (in `[0, π]`) of the rotation between two unit quaternions, sign-insensitive.
    pub fn angle_to(self, o: Self) -> f32 {
        let d = libm::fabsf(self.dot(o)).min(1.0);
        2.0 * libm::acosf(d)
    }

    /// Normalised linear interpolation along the shorter arc: `self` at `ratio = 0`, `o` at `ratio = 1`.
    ///
    /// Cheaper than [`slerp`](Self::slerp); the angular velocity is not constant over the interval, but for the
    /// small angles between consecutive sensor samples the difference is negligible.
    pub fn nlerp(self, o: Self, ratio: f32) -> Self {
        let o = if self.dot(o) < 0.0 { o.scale(-1.0) } else { o };
        let q = self.scale(1.0 - ratio).add(o.scale(ratio));
        let n = q.norm();
        if n.is_finite() && n > f32::MIN_POSITIVE {
            q.scale(1.0 / n)
        } else {
            self
        }
    }

    /// Spherical linear interpolation along the shorter arc (constant angular velocity), as tf2 does for
    /// rotations: `self` at `ratio = 0`, `o` at `ratio = 1`. Falls back to [`nlerp`](Self::nlerp) when the two are
    /// nearly parallel (`|dot| > 0.9995`), where slerp's `1/sin θ` is ill-conditioned. Inputs should be unit
    /// quaternions; the result is normalised.
    pub fn slerp(self, o: Self, ratio: f32) -> Self {
        let mut d = self.dot(o);
        let o = if d < 0.0 {
            d = -d;
            o.scale(-1.0)
        } else {
            o
        };
        if d > SLERP_NLERP_THRESHOLD || d.is_nan() {
            // Nearly parallel (or NaN, which nlerp passes through without panicking).
            return self.nlerp(o, ratio);
        }
        let theta0 = libm::acosf(d.clamp(-1.0, 1.0));
        let sin0 = libm::sinf(theta0);
        let theta = theta0 * ratio;
        let s0 = libm::sinf(theta0 - theta) / sin0;
        let s1 = libm::sinf(theta) / sin0;
        self.scale(s0).add(o.scale(s1)).normalized()
    }
}

impl Mul for Quaternion {
    type Output = Self;
    /// The Hamilton product `self ⊗ o` (apply `o` first, then `self`).
    fn mul(self, o: Self) -> Self {
        Self::new(
            self.w * o.w - self.x * o.x - self.y * o.y - self.z * o.z,
            self.w * o.x + self.x * o.w + self.y * o.z - self.z * o.y,
            self.w * o.y - self.x * o.z + self.y * o.w + self.z * o.x,
            self.w * o.z + self.x * o.y - self.y * o.x + self.z * o.w,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::f32::consts::{FRAC_PI_2, PI};

    fn close(a: f32, b: f32, eps: f32) -> bool {
        (a - b).abs() <= eps
    }

    fn vclose(a: Vector3, b: Vector3, eps: f32) -> bool {
        (a - b).norm() <= eps
    }

    #[test]
    fn layouts_have_no_padding() {
        assert_eq!(core::mem::size_of::<Vector3>(), 12);
        assert_eq!(core::mem::size_of::<Quaternion>(), 16);
    }

    #[test]
    fn rotation_about_z_by_quarter_turn() {
        let q = Quaternion::from_axis_angle(Vector3::new(0.0, 0.0, 1.0), FRAC_PI_2);
        assert!(vclose(
            q.rotate(Vector3::new(1.0, 0.0, 0.0)),
            Vector3::new(0.0, 1.0, 0.0),
            1e-6
        ));
        assert!(vclose(
            q.rotate_inverse(Vector3::new(0.0, 1.0, 0.0)),
            Vector3::new(1.0, 0.0, 0.0),
            1e-6
        ));
    }

    #[test]
    fn euler_round_trip_and_matrix_agree() {
        for &(r, p, y) in &[
            (0.3f32, -0.2f32, 1.0f32),
            (-1.2, 0.7, -2.5),
            (0.0, 0.0, 3.0),
            (2.0, -1.4, 0.1),
        ] {
            let q = Quaternion::from_euler(r, p, y);
            let (r2, p2, y2) = q.to_euler();
            assert!(
                close(r, r2, 1e-4) && close(p, p2, 1e-4) && close(y, y2, 1e-4),
                "{r} {p} {y}"
            );
            // Compose from elementary rotations: Rz(yaw) * Ry(pitch) * Rx(roll).
            let qc = Quaternion::from_axis_angle(Vector3::new(0.0, 0.0, 1.0), y)
                * Quaternion::from_axis_angle(Vector3::new(0.0, 1.0, 0.0), p)
                * Quaternion::from_axis_angle(Vector3::new(1.0, 0.0, 0.0), r);
            assert!(q.angle_to(qc) < 1e-3);
            let m = q.to_rotation_matrix();
            let back = Quaternion::from_rotation_matrix(m);
            assert!(q.angle_to(back) < 1e-3);
            let v = Vector3::new(0.3, -0.5, 0.8);
            let mv = Vector3::new(
                m[0][0] * v.x + m[0][1] * v.y + m[0][2] * v.z,
                m[1][0] * v.x + m[1][1] * v.y + m[1][2] * v.z,
                m[2][0] * v.x + m[2][1] * v.y + m[2][2] * v.z,
            );
            assert!(vclose(mv, q.rotate(v), 1e-5));
        }
    }

    #[test]
    fn slerp_is_constant_rate_and_shortest_path() {
        let axis = Vector3::new(1.0, 2.0, -0.5);
        let a = Quaternion::from_axis_angle(axis, 0.2);
        let b = Quaternion::from_axis_angle(axis, 1.4);
        for i in 0..=10 {
            let r = i as f32 / 10.0;
            let q = a.slerp(b, r);
            let expect = Quaternion::from_axis_angle(axis, 0.2 + 1.2 * r);
            assert!(q.angle_to(expect) < 1e-3, "r={r}");
        }
        // -b is the same rotation: the result must not take the long way round.
        let q = a.slerp(b.scale(-1.0), 0.5);
        assert!(q.angle_to(Quaternion::from_axis_angle(axis, 0.8)) < 1e-3);
        let q = a.nlerp(b.scale(-1.0), 0.5);
        assert!(q.angle_to(Quaternion::from_axis_angle(axis, 0.8)) < 1e-3);
    }

    #[test]
    fn slerp_near_parallel_and_degenerate_inputs() {
        let a = Quaternion::from_axis_angle(Vector3::new(0.0, 0.0, 1.0), 1.0);
        let b = Quaternion::from_axis_angle(Vector3::new(0.0, 0.0, 1.0), 1.0 + 1e-5);
        let q = a.slerp(b, 0.5);
        assert!(q.is_finite() && close(q.norm(), 1.0, 1e-6));
        assert!(a.slerp(a, 0.3).angle_to(a) < 1e-3);
        // Half-turn apart: dot = 0, well-defined.
        let c = Quaternion::from_axis_angle(Vector3::new(0.0, 0.0, 1.0), 1.0 + PI);
        assert!(a.slerp(c, 0.5).is_finite());
        // NaN in, no panic.
        let n = Quaternion::new(f32::NAN, 0.0, 0.0, 0.0);
        let _ = a.slerp(n, 0.5);
        let _ = a.nlerp(n, 0.5);
        assert_eq!(Quaternion::new(0.0, 0.0, 0.0, 0.0).normalized(), Quaternion::IDENTITY);
    }

    #[test]
    fn rotation_vector_exponential() {
        let v = Vector3::new(0.1, -0.2, 0.3);
        let q = Quaternion::from_rotation_vector(v);
        assert!(q.angle_to(Quaternion::from_axis_angle(v, v.norm())) < 1e-5);
        let tiny = Quaternion::from_rotation_vector(Vector3::new(1e-8, 0.0, 0.0));
        assert!(close(tiny.norm(), 1.0, 1e-6));
    }
}
