//! The team's MAU price: what a month's subjects cost, for the savings table, the forecast
//! and the budget. Twilio's list terms differ from many contracts, so nothing is assumed:
//! without `--price-per-mau` every cost is unknown (`null`), never a guess.

use crate::config::PricingArgs;

/// A price per MAU and the MAUs free each month.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pricing {
    /// In the bill's currency (USD on Twilio's list); `None` when not configured.
    pub price_per_mau: Option<f64>,
    /// MAUs each month that cost nothing (Twilio's list: the first 200).
    pub free_mau: u64,
}

impl Pricing {
    /// From the command line, refusing a price that is negative or not a number.
    pub fn from_args(args: &PricingArgs) -> Result<Pricing, String> {
        if let Some(p) = args.price_per_mau {
            if !p.is_finite() || p < 0.0 {
                return Err(format!(
                    "--price-per-mau must be a number of at least 0, got {p}"
                ));
            }
        }
        Ok(Pricing {
            price_per_mau: args.price_per_mau,
            free_mau: args.free_mau,
        })
    }

    /// The bill for `subjects` MAUs in a month: the ones past the free allowance, priced.
    pub fn bill(&self, subjects: u64) -> Option<f64> {
        self.price_per_mau
            .map(|p| round_cents(subjects.saturating_sub(self.free_mau) as f64 * p))
    }

    /// What the bill drops by if `fewer` of `subjects` had not been counted: the free
    /// allowance absorbs the first ones saved only when the month is under it.
    pub fn saving(&self, subjects: u64, fewer: u64) -> Option<f64> {
        let after = subjects.saturating_sub(fewer);
        Some(round_cents(self.bill(subjects)? - self.bill(after)?))
    }
}

/// Money to the cent, so JSON and text show the same figure.
fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Pricing {
        Pricing {
            price_per_mau: Some(0.05),
            free_mau: 200,
        }
    }

    #[test]
    fn the_free_allowance_is_not_billed() {
        assert_eq!(list().bill(150), Some(0.0));
        assert_eq!(list().bill(200), Some(0.0));
        assert_eq!(list().bill(1_200), Some(50.0));
    }

    #[test]
    fn no_price_means_no_cost() {
        let p = Pricing::default();
        assert_eq!(p.bill(1_000), None);
        assert_eq!(p.saving(1_000, 10), None);
    }

    #[test]
    fn a_saving_under_the_allowance_is_nothing() {
        assert_eq!(list().saving(1_200, 100), Some(5.0));
        assert_eq!(list().saving(250, 100), Some(2.5));
        assert_eq!(list().saving(150, 100), Some(0.0));
    }

    #[test]
    fn a_negative_price_is_refused_by_name() {
        let args = PricingArgs {
            price_per_mau: Some(-1.0),
            free_mau: 0,
        };
        let e = Pricing::from_args(&args).unwrap_err();
        assert!(e.contains("--price-per-mau"), "{e}");
    }
}
