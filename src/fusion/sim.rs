//! Deterministic ground truth and sensor noise for testing fusion pipelines (no_std, no allocation).
//!
//! A [`Trajectory`] gives the true attitude and body angular rate as functions of time; a [`SensorSim`] turns
//! it into IMU, magnetometer and GNSS samples with Gaussian noise from a seeded [`Pcg32`], so a run is exactly
//! reproducible on every target. The body rotates about a fixed point (no linear acceleration), so the
//! accelerometer measures gravity only: `accel = q* (0, 0, g) q` in the NWU earth frame, and the magnetometer
//! `mag = q* B q` with `B` the earth-frame field of an [`Environment`].
//!
//! It lives in the library (rather than in an example) because it is as `no_std` as the rest of the crate: the
//! static, libc-free sensor programs of the multi-process scenario use it, and so can users testing their own
//! fusion code.

use core::f64::consts::TAU;

use super::geometry::{Quaternion, Vector3};
use super::sample::{GnssFix, ImuSample, MagSample};

/// The PCG32 random number generator (O'Neill's `pcg32`, XSH-RR output, 64-bit state): small, fast and
/// reproducible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pcg32 {
    state: u64,
    inc: u64,
}

impl Pcg32 {
    const MULTIPLIER: u64 = 6_364_136_223_846_793_005;

    /// A generator from a seed and a stream id (different streams are independent sequences).
    pub const fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Self {
            state: 0,
            inc: (stream << 1) | 1,
        };
        rng.state = rng.state.wrapping_mul(Self::MULTIPLIER).wrapping_add(rng.inc);
        rng.state = rng.state.wrapping_add(seed);
        rng.state = rng.state.wrapping_mul(Self::MULTIPLIER).wrapping_add(rng.inc);
        rng
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(Self::MULTIPLIER).wrapping_add(self.inc);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        xorshifted.rotate_right((old >> 59) as u32)
    }

    /// A uniform `f32` in `[0, 1)` (24 random bits).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }
}

/// Standard normal samples by the Box–Muller transform over a [`Pcg32`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gaussian {
    rng: Pcg32,
    spare: Option<f32>,
}

impl Gaussian {
    /// A generator drawing from `rng`.
    pub const fn new(rng: Pcg32) -> Self {
        Self { rng, spare: None }
    }

    /// One sample of `N(0, 1)`.
    pub fn sample(&mut self) -> f32 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // u1 in (0, 1] so that ln(u1) is finite.
        let u1 = 1.0 - self.rng.next_f32();
        let u2 = self.rng.next_f32();
        let r = libm::sqrtf(-2.0 * libm::logf(u1));
        let (s, c) = libm::sincosf(core::f32::consts::TAU * u2);
        self.spare = Some(r * s);
        r * c
    }

    /// A vector of independent `N(0, sigma²)` components.
    pub fn vector(&mut self, sigma: f32) -> Vector3 {
        Vector3::new(self.sample() * sigma, self.sample() * sigma, self.sample() * sigma)
    }
}

/// A ground-truth rotational motion: attitude (body to NWU earth) and body-frame angular rate, at time `t` in
/// seconds.
pub trait Trajectory {
    /// The true attitude at `t`.
    fn attitude(&self, t: f64) -> Quaternion;
    /// The true angular rate in the body frame at `t`, in rad/s (what an ideal gyroscope measures).
    fn body_rate(&self, t: f64) -> Vector3;
}

/// Rotation at a constant body-frame rate: `q(t) = initial ⊗ exp(rate · t)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConstantRate {
    /// Attitude at `t = 0`.
    pub initial: Quaternion,
    /// Body-frame angular rate in rad/s.
    pub rate: Vector3,
}

impl Trajectory for ConstantRate {
    fn attitude(&self, t: f64) -> Quaternion {
        let speed = f64::from(self.rate.norm());
        // Reduce the angle modulo 4π (the quaternion period) in f64 so that long runs keep f32 precision.
        let angle = (speed * t) % (2.0 * TAU);
        (self.initial * Quaternion::from_axis_angle(self.rate, angle as f32)).normalized()
    }

    fn body_rate(&self, _t: f64) -> Vector3 {
        self.rate
    }
}

/// A vehicle-like motion: roll and pitch oscillate sinusoidally while the heading turns at a constant rate.
///
/// `roll(t) = roll_amplitude · sin(2π · roll_frequency · t)`,
/// `pitch(t) = pitch_amplitude · sin(2π · pitch_frequency · t + π/3)`,
/// `yaw(t) = initial_yaw + yaw_rate · t` (ZYX Euler angles, radians and hertz).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wobble {
    /// Roll amplitude (rad).
    pub roll_amplitude: f32,
    /// Roll frequency (Hz).
    pub roll_frequency: f32,
    /// Pitch amplitude (rad); keep it below π/2.
    pub pitch_amplitude: f32,
    /// Pitch frequency (Hz).
    pub pitch_frequency: f32,
    /// Heading rate (rad/s).
    pub yaw_rate: f32,
    /// Heading at `t = 0` (rad).
    pub initial_yaw: f32,
}

impl Wobble {
    /// Euler angles and their rates at `t`: `((roll, pitch, yaw), (roll', pitch', yaw'))`.
    fn euler(&self, t: f64) -> ((f64, f64, f64), (f64, f64, f64)) {
        let wr = TAU * f64::from(self.roll_frequency);
        let wp = TAU * f64::from(self.pitch_frequency);
        let (ar, ap) = (f64::from(self.roll_amplitude), f64::from(self.pitch_amplitude));
        let phase_p = TAU / 6.0;
        let roll = ar * libm::sin(wr * t);
        let droll = ar * wr * libm::cos(wr * t);
        let pitch = ap * libm::sin(wp * t + phase_p);
        let dpitch = ap * wp * libm::cos(wp * t + phase_p);
        let yaw = (f64::from(self.initial_yaw) + f64::from(self.yaw_rate) * t) % TAU;
        ((roll, pitch, yaw), (droll, dpitch, f64::from(self.yaw_rate)))
    }
}

impl Trajectory for Wobble {
    fn attitude(&self, t: f64) -> Quaternion {
        let ((r, p, y), _) = self.euler(t);
        Quaternion::from_euler(r as f32, p as f32, y as f32)
    }

    fn body_rate(&self, t: f64) -> Vector3 {
        // Body rates from ZYX Euler rates: p = φ' − ψ' sinθ, q = θ' cosφ + ψ' sinφ cosθ,
        // r = −θ' sinφ + ψ' cosφ cosθ.
        let ((roll, pitch, _), (dr, dp, dy)) = self.euler(t);
        let (sr, cr) = (libm::sin(roll), libm::cos(roll));
        let (sp, cp) = (libm::sin(pitch), libm::cos(pitch));
        Vector3::new(
            (dr - dy * sp) as f32,
            (dp * cr + dy * sr * cp) as f32,
            (-dp * sr + dy * cr * cp) as f32,
        )
    }
}

/// The earth-frame (NWU) gravity and magnetic field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Environment {
    /// Gravity magnitude in m/s².
    pub gravity: f32,
    /// Magnetic field in the NWU earth frame (x north, z up), e.g. in µT.
    pub magnetic_field: Vector3,
}

impl Environment {
    /// Gravity `gravity` and a field of `strength` dipping `inclination` radians below the horizon, towards
    /// north.
    pub fn new(gravity: f32, strength: f32, inclination: f32) -> Self {
        let (s, c) = libm::sincosf(inclination);
        Self {
            gravity,
            magnetic_field: Vector3::new(strength * c, 0.0, -strength * s),
        }
    }
}

impl Default for Environment {
    /// Standard gravity and a 50 µT field with 60° inclination (mid-latitude northern hemisphere).
    fn default() -> Self {
        Self::new(9.806_65, 50.0, 60.0 * core::f32::consts::PI / 180.0)
    }
}

/// White Gaussian noise (standard deviations) and a constant gyroscope bias.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseModel {
    /// Gyroscope noise per axis per sample (rad/s).
    pub gyro_sigma: f32,
    /// Constant gyroscope bias (rad/s).
    pub gyro_bias: Vector3,
    /// Accelerometer noise per axis per sample (m/s²).
    pub accel_sigma: f32,
    /// Magnetometer noise per axis per sample (field units).
    pub mag_sigma: f32,
    /// GNSS horizontal position noise (m).
    pub gnss_horizontal_sigma: f32,
    /// GNSS vertical position noise (m).
    pub gnss_vertical_sigma: f32,
}

impl NoiseModel {
    /// Ideal sensors.
    pub const NONE: Self = Self {
        gyro_sigma: 0.0,
        gyro_bias: Vector3::ZERO,
        accel_sigma: 0.0,
        mag_sigma: 0.0,
        gnss_horizontal_sigma: 0.0,
        gnss_vertical_sigma: 0.0,
    };

    /// Roughly a consumer MEMS IMU at 100–1000 Hz: gyro 0.01 rad/s with a 0.005 rad/s bias on x, accelerometer
    /// 0.05 m/s², magnetometer 0.5 µT (of 50), GNSS 1.5 m / 3 m.
    pub const CONSUMER_MEMS: Self = Self {
        gyro_sigma: 0.01,
        gyro_bias: Vector3::new(0.005, 0.0, 0.0),
        accel_sigma: 0.05,
        mag_sigma: 0.5,
        gnss_horizontal_sigma: 1.5,
        gnss_vertical_sigma: 3.0,
    };
}

/// Simulated IMU, magnetometer and GNSS receiver on a body following a [`Trajectory`].
#[derive(Clone, Copy, Debug)]
pub struct SensorSim<M> {
    /// The ground-truth motion.
    pub motion: M,
    /// Gravity and magnetic field.
    pub environment: Environment,
    /// Noise levels.
    pub noise: NoiseModel,
    /// Where the (stationary) GNSS antenna is: latitude, longitude (degrees) and altitude (m).
    pub position: (f64, f64, f64),
    gauss: Gaussian,
}

impl<M: Trajectory> SensorSim<M> {
    /// A simulator; `seed` selects the noise sequence. The GNSS position defaults to (48.1°, 11.6°, 520 m).
    pub fn new(motion: M, environment: Environment, noise: NoiseModel, seed: u64) -> Self {
        Self {
            motion,
            environment,
            noise,
            position: (48.1, 11.6, 520.0),
            gauss: Gaussian::new(Pcg32::new(seed, 54)),
        }
    }

    /// The true attitude at `t`.
    pub fn truth(&self, t: f64) -> Quaternion {
        self.motion.attitude(t)
    }

    /// An IMU sample at `t`: true specific force and rate plus noise (and bias on the gyroscope).
    pub fn imu(&mut self, t: f64) -> ImuSample {
        let q = self.motion.attitude(t);
        let accel = q.rotate_inverse(Vector3::new(0.0, 0.0, self.environment.gravity));
        let gyro = self.motion.body_rate(t) + self.noise.gyro_bias;
        ImuSample {
            accel: accel + self.gauss.vector(self.noise.accel_sigma),
            gyro: gyro + self.gauss.vector(self.noise.gyro_sigma),
        }
    }

    /// A magnetometer sample at `t`.
    pub fn mag(&mut self, t: f64) -> MagSample {
        let q = self.motion.attitude(t);
        let field = q.rotate_inverse(self.environment.magnetic_field);
        MagSample::new(field + self.gauss.vector(self.noise.mag_sigma))
    }

    /// A GNSS fix at `t` (the antenna is stationary; the fix carries position noise).
    pub fn gnss(&mut self, _t: f64) -> GnssFix {
        const METRES_PER_DEG_LAT: f64 = 111_320.0;
        let (lat, lon, alt) = self.position;
        let north = f64::from(self.gauss.sample() * self.noise.gnss_horizontal_sigma);
        let east = f64::from(self.gauss.sample() * self.noise.gnss_horizontal_sigma);
        let up = f64::from(self.gauss.sample() * self.noise.gnss_vertical_sigma);
        let metres_per_deg_lon = METRES_PER_DEG_LAT * libm::cos(lat.to_radians()).max(1e-6);
        GnssFix {
            latitude_deg: lat + north / METRES_PER_DEG_LAT,
            longitude_deg: lon + east / metres_per_deg_lon,
            altitude_m: alt + up,
            horizontal_accuracy_m: self.noise.gnss_horizontal_sigma,
            vertical_accuracy_m: self.noise.gnss_vertical_sigma,
            fix_type: GnssFix::FIX_3D,
            satellites: 12,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcg32_reference_values() {
        // pcg32 demo (pcg32-global-demo): seed 42, stream 54.
        let mut rng = Pcg32::new(42, 54);
        let got: [u32; 6] = core::array::from_fn(|_| rng.next_u32());
        assert_eq!(
            got,
            [0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]
        );
    }

    #[test]
    fn gaussian_moments() {
        let mut g = Gaussian::new(Pcg32::new(1, 2));
        let n = 20_000;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let z = f64::from(g.sample());
            assert!(z.is_finite());
            s1 += z;
            s2 += z * z;
        }
        let mean = s1 / f64::from(n);
        let var = s2 / f64::from(n) - mean * mean;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }

    /// The analytic body rates agree with the attitude's finite-difference derivative.
    fn check_rates<M: Trajectory>(m: &M) {
        let h = 1e-4;
        for k in 0..50 {
            let t = 0.37 * f64::from(k);
            let q0 = m.attitude(t - h);
            let q1 = m.attitude(t + h);
            let dq = q0.conjugate() * q1; // body-frame increment over 2h
            let dq = if dq.w < 0.0 {
                Quaternion::new(-dq.w, -dq.x, -dq.y, -dq.z)
            } else {
                dq
            };
            let numeric = dq.vector() * (2.0 / (2.0 * h as f32));
            let analytic = m.body_rate(t);
            assert!(
                (numeric - analytic).norm() < 2e-2,
                "t={t}: numeric {numeric:?} analytic {analytic:?}"
            );
        }
    }

    #[test]
    fn trajectories_are_consistent() {
        check_rates(&ConstantRate {
            initial: Quaternion::from_euler(0.1, 0.2, 0.3),
            rate: Vector3::new(0.2, -0.3, 0.5),
        });
        check_rates(&Wobble {
            roll_amplitude: 0.3,
            roll_frequency: 0.2,
            pitch_amplitude: 0.2,
            pitch_frequency: 0.13,
            yaw_rate: 0.25,
            initial_yaw: 1.0,
        });
    }

    #[test]
    fn ideal_sensors_measure_gravity_and_field() {
        let m = ConstantRate {
            initial: Quaternion::from_euler(0.5, -0.4, 2.0),
            rate: Vector3::ZERO,
        };
        let env = Environment::default();
        let mut sim = SensorSim::new(m, env, NoiseModel::NONE, 0);
        let imu = sim.imu(1.0);
        assert!((imu.accel.norm() - env.gravity).abs() < 1e-4);
        assert_eq!(imu.gyro, Vector3::ZERO);
        let up_earth = m.initial.rotate(imu.accel);
        assert!((up_earth - Vector3::new(0.0, 0.0, env.gravity)).norm() < 1e-4);
        let mag = sim.mag(1.0);
        assert!((m.initial.rotate(mag.field) - env.magnetic_field).norm() < 1e-4);
        let fix = sim.gnss(1.0);
        assert_eq!((fix.latitude_deg, fix.longitude_deg, fix.altitude_m), sim.position);
    }

    #[test]
    fn runs_are_reproducible() {
        let m = Wobble {
            roll_amplitude: 0.3,
            roll_frequency: 0.2,
            pitch_amplitude: 0.2,
            pitch_frequency: 0.13,
            yaw_rate: 0.25,
            initial_yaw: 1.0,
        };
        let mut a = SensorSim::new(m, Environment::default(), NoiseModel::CONSUMER_MEMS, 5);
        let mut b = SensorSim::new(m, Environment::default(), NoiseModel::CONSUMER_MEMS, 5);
        for k in 0..100 {
            let t = f64::from(k) * 0.01;
            assert_eq!(a.imu(t), b.imu(t));
            assert_eq!(a.mag(t), b.mag(t));
        }
    }
}
