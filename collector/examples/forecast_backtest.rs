//! Backtest of the month-end forecast (`mau_collector::forecast`): simulated months of
//! several shapes, each with previous months of the same kind, forecast at the end of days
//! 7, 14 and 21 and compared with the month's true final count. Prints, per shape and
//! method, the mean absolute percentage error and how often the truth fell inside the band.
//!
//! `cargo run --release -p mau-collector --example forecast_backtest` (or `bash bench/run.sh`).
//! Knobs: BACKTEST_TRIALS (default 200), BACKTEST_USERS (default 2000), BACKTEST_SEED.

use mau_collector::forecast::{project, Curve};

/// splitmix64: a small, seedable generator, so a run is repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A user of a simulated month: how often they come, and the first day they can.
struct User {
    p: f64,
    from: u8,
    /// Front-loaded shape: the day of the month they are due.
    due: u8,
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// The same users every month, each coming on a day with their own probability.
    Steady,
    /// Most users come once in the first week (a monthly task), few afterwards.
    FrontLoaded,
    /// 15% more users each month, the new ones signing up through the month.
    Growing,
    /// Steady history; this month a launch on the 15th brings 40% more users.
    LaunchSpike,
    /// Weekdays busy, weekends at a fifth; months start on different weekdays.
    Weekly,
}

const SHAPES: [(Shape, &str); 5] = [
    (Shape::Steady, "steady"),
    (Shape::FrontLoaded, "front-loaded (week 1)"),
    (Shape::Growing, "growing 15%/month"),
    (Shape::LaunchSpike, "launch spike on the 15th"),
    (Shape::Weekly, "weekly rhythm"),
];

/// Month lengths of the history (oldest first) and of the forecast month.
const LENGTHS: [u8; 4] = [31, 30, 31, 30];
const DAYS: [usize; 3] = [7, 14, 21];

/// One simulated month: `index` counts from the oldest history month; `current` marks the
/// month forecast.
fn month(
    shape: Shape,
    users: usize,
    index: usize,
    days: u8,
    current: bool,
    rng: &mut Rng,
) -> Curve {
    let base = users as f64;
    let n = match shape {
        Shape::Growing => (base * 1.15f64.powi(index as i32)) as usize,
        Shape::LaunchSpike if current => (base * 1.4) as usize,
        _ => users,
    };
    let previous = match shape {
        Shape::Growing if index > 0 => (base * 1.15f64.powi(index as i32 - 1)) as usize,
        _ => users,
    };
    let people: Vec<User> = (0..n)
        .map(|i| {
            // Many occasional users, few daily ones.
            let p = 0.35 * rng.next().powi(3) + 0.005;
            let from = if i >= previous {
                match shape {
                    Shape::LaunchSpike => 15,
                    _ => 1 + (rng.next() * days as f64) as u8,
                }
            } else {
                1
            };
            let due = 1 + (rng.next() * 7.0) as u8;
            User { p, from, due }
        })
        .collect();
    let first_weekday = (index * 3) % 7;
    let mut new = vec![0u64; days as usize];
    for u in &people {
        for d in u.from..=days {
            let p = match shape {
                Shape::FrontLoaded if d == u.due => 0.9,
                Shape::FrontLoaded => u.p * 0.05,
                Shape::LaunchSpike if u.from == 15 => 0.5,
                Shape::Weekly if (first_weekday + d as usize - 1) % 7 >= 5 => u.p * 0.2,
                _ => u.p,
            };
            if rng.next() < p {
                new[d as usize - 1] += 1;
                break;
            }
        }
    }
    Curve::from_new(
        days,
        new.into_iter().enumerate().map(|(i, n)| (i as u8 + 1, n)),
    )
}

#[derive(Default, Clone, Copy)]
struct Score {
    abs_pct: f64,
    inside: u32,
    width_pct: f64,
    n: u32,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let trials = env("BACKTEST_TRIALS", 200) as usize;
    let users = env("BACKTEST_USERS", 2000) as usize;
    let mut rng = Rng(env("BACKTEST_SEED", 21));
    println!(
        "Forecast backtest: {trials} simulated months per shape, {users} users, history of \
         {} previous months; error = |forecast - final| / final; in band = final within low..high",
        LENGTHS.len() - 1
    );
    println!(
        "| shape | method | day 7 error | day 7 in band | day 14 error | day 14 in band | day 21 error | day 21 in band | day 14 band width |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (shape, name) in SHAPES {
        // [method][day]: history of 3 months, history of 1, none (trend).
        let mut scores = [[Score::default(); 3]; 3];
        for _ in 0..trials {
            let last = LENGTHS.len() - 1;
            let history: Vec<Curve> = (0..last)
                .map(|i| month(shape, users, i, LENGTHS[i], false, &mut rng))
                .collect();
            let this = month(shape, users, last, LENGTHS[last], true, &mut rng);
            let truth = this.last() as f64;
            let newest = &history[last - 1..];
            for (m, h) in [&history[..], newest, &[]].iter().enumerate() {
                for (k, &day) in DAYS.iter().enumerate() {
                    let so_far = Curve {
                        days_in_month: this.days_in_month,
                        cumulative: this.cumulative[..day].to_vec(),
                    };
                    let p = project(&so_far, day as f64, h);
                    let s = &mut scores[m][k];
                    s.abs_pct += (p.projected as f64 - truth).abs() / truth * 100.0;
                    s.inside += u32::from(p.low as f64 <= truth && truth <= p.high as f64);
                    s.width_pct += (p.high - p.low) as f64 / truth * 100.0;
                    s.n += 1;
                }
            }
        }
        let methods = [
            format!("history:{}", LENGTHS.len() - 1),
            "history:1".to_owned(),
            "trend".to_owned(),
        ];
        for (m, method) in methods.iter().enumerate() {
            let cells: Vec<String> = scores[m]
                .iter()
                .map(|s| {
                    format!(
                        "{:.1}% | {:.0}%",
                        s.abs_pct / s.n as f64,
                        s.inside as f64 / s.n as f64 * 100.0
                    )
                })
                .collect();
            let width = scores[m][1].width_pct / scores[m][1].n as f64;
            println!(
                "| {name} | {method} | {} | ±{:.0}% |",
                cells.join(" | "),
                width / 2.0
            );
        }
    }
}
