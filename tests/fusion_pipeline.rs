//! The pure fusion pipeline end to end, through the public API only: simulated IMU (200 Hz) and magnetometer
//! (50 Hz, offset stamps) streams → synchronisers and time-indexed reads → Madgwick filter → attitude error
//! against the ground truth. (The multi-process version over shared-memory rings is the demo's job.)

use std::time::Duration;

use shmfusion::fusion::sim::{Environment, NoiseModel, SensorSim, Trajectory, Wobble};
use shmfusion::fusion::{
    ApproximateTime, ImuSample, LatestOfEach, Madgwick, MagSample, SliceSeries, TimeSeriesExt, Timestamp,
};

#[derive(Clone, Copy, Debug)]
enum Input {
    Imu(ImuSample),
    Mag(MagSample),
}

const IMU: usize = 0;
const MAG: usize = 1;
const IMU_PERIOD_NS: u64 = 5_000_000;
const MAG_PERIOD_NS: u64 = 20_000_000;
const MAG_OFFSET_NS: u64 = 1_300_000;
const DURATION_NS: u64 = 30_000_000_000;
const DEG: f32 = core::f32::consts::PI / 180.0;

fn motion() -> Wobble {
    Wobble {
        roll_amplitude: 25.0 * DEG,
        roll_frequency: 0.2,
        pitch_amplitude: 15.0 * DEG,
        pitch_frequency: 0.13,
        yaw_rate: 20.0 * DEG,
        initial_yaw: 1.0,
    }
}

/// All samples of both sensors, in stamp order (which is the arrival order here).
fn streams() -> Vec<(usize, Timestamp, Input)> {
    let mut sim = SensorSim::new(motion(), Environment::default(), NoiseModel::CONSUMER_MEMS, 2024);
    let mut out = Vec::new();
    let (mut ti, mut tm) = (0u64, MAG_OFFSET_NS);
    while ti < DURATION_NS || tm < DURATION_NS {
        if ti <= tm {
            out.push((IMU, Timestamp::from_nanos(ti), Input::Imu(sim.imu(ti as f64 * 1e-9))));
            ti += IMU_PERIOD_NS;
        } else {
            out.push((MAG, Timestamp::from_nanos(tm), Input::Mag(sim.mag(tm as f64 * 1e-9))));
            tm += MAG_PERIOD_NS;
        }
    }
    out
}

/// Zero-order hold of the magnetometer at every IMU sample, Madgwick at 200 Hz: RMS attitude error below 1°
/// (and maximum below 3°) after 3 s of convergence, on a vehicle-like motion (±25° roll, ±15° pitch, 20°/s yaw).
#[test]
fn madgwick_on_latest_of_each_tracks_the_ground_truth() {
    let truth = motion();
    let mut sync = LatestOfEach::<Input, 2>::new(IMU).with_max_age(Duration::from_millis(25));
    let mut filter: Option<Madgwick> = None;
    let mut last_imu: Option<Timestamp> = None;
    let (mut sum_sq, mut n, mut worst) = (0.0f64, 0u32, 0.0f32);
    for (channel, stamp, input) in streams() {
        sync.push(channel, stamp, input, |set| {
            let (Input::Imu(imu), Input::Mag(mag)) = (set[IMU].value, set[MAG].value) else {
                unreachable!("channels carry their own sample types");
            };
            let f = filter.get_or_insert_with(|| Madgwick::from_accel_mag(imu.accel, mag.field, 0.1).unwrap());
            if let Some(prev) = last_imu {
                let dt = stamp.saturating_duration_since(prev).as_secs_f32();
                f.update(imu.gyro, imu.accel, mag.field, dt).unwrap();
            }
            last_imu = Some(stamp);
            let t = stamp.as_secs_f64();
            if t >= 3.0 {
                let e = f.attitude().angle_to(truth.attitude(t)) / DEG;
                sum_sq += f64::from(e) * f64::from(e);
                n += 1;
                worst = worst.max(e);
            }
        })
        .unwrap();
    }
    let rms = (sum_sq / f64::from(n)).sqrt();
    println!("LatestOfEach + Madgwick over {n} updates: rms {rms:.3}°, max {worst:.3}°");
    assert!(n > 5000);
    assert!(rms < 1.0, "rms {rms}°");
    assert!(worst < 3.0, "max {worst}°");
    // The first 3 s hold 600 IMU samples; the very first has no magnetometer partner yet.
    assert_eq!(sync.stats().emitted as u32, n + 599);
    assert_eq!(sync.stats().dropped, 1);
}

/// ApproximateTime pairs every magnetometer sample with its nearest IMU sample (1.3 ms away), whatever the
/// arrival order across the two channels.
#[test]
fn approximate_time_pairs_each_mag_with_the_nearest_imu() {
    let all = streams();
    let mut sync = ApproximateTime::<Input, 2, 16>::new();
    let mut pairs = Vec::new();
    // Deliver the magnetometer late (a slower transport): all IMU samples up to 12 ms after it come first.
    let mut delayed: Vec<(usize, Timestamp, Input)> = Vec::new();
    for &(c, t, v) in &all {
        if c == MAG {
            delayed.push((c, t.saturating_add(Duration::from_millis(12)), v));
            continue;
        }
        while let Some(&(_, due, _)) = delayed.first() {
            if due > t {
                break;
            }
            let (c2, _, v2) = delayed.remove(0);
            let orig = due.saturating_sub(Duration::from_millis(12));
            sync.push(c2, orig, v2, |set| pairs.push((set[IMU].stamp, set[MAG].stamp)))
                .unwrap();
        }
        sync.push(c, t, v, |set| pairs.push((set[IMU].stamp, set[MAG].stamp)))
            .unwrap();
    }
    for (c, due, v) in delayed {
        let orig = due.saturating_sub(Duration::from_millis(12));
        sync.push(c, orig, v, |set| pairs.push((set[IMU].stamp, set[MAG].stamp)))
            .unwrap();
    }
    let mags = all.iter().filter(|m| m.0 == MAG).count();
    assert!(
        pairs.len() + 1 >= mags,
        "{} pairs for {mags} magnetometer samples",
        pairs.len()
    );
    for (imu, mag) in &pairs {
        assert_eq!(mag.as_nanos() - imu.as_nanos(), MAG_OFFSET_NS);
    }
    assert_eq!(sync.stats().overflowed, 0);
}

/// Interpolating the IMU history at magnetometer stamps gives the true angular rate there to within the
/// gyroscope noise.
#[test]
fn imu_interpolated_at_mag_stamps() {
    let truth = motion();
    let all = streams();
    let history: Vec<(Timestamp, ImuSample)> = all
        .iter()
        .filter_map(|&(_, t, v)| match v {
            Input::Imu(s) => Some((t, s)),
            Input::Mag(_) => None,
        })
        .collect();
    let series = SliceSeries::new(0, &history);
    let mut worst = 0.0f32;
    for &(_, t, v) in &all {
        if let Input::Mag(_) = v {
            let Ok(imu) = series.interpolate_at(t) else {
                continue; // the last magnetometer sample may be after the last IMU sample
            };
            let want = truth.body_rate(t.as_secs_f64()) + NoiseModel::CONSUMER_MEMS.gyro_bias;
            worst = worst.max((imu.gyro - want).norm());
        }
    }
    // Noise 0.01 rad/s per axis per sample: the interpolated error stays below 6σ·√3.
    assert!(worst < 0.1, "worst gyro error {worst} rad/s");
}
