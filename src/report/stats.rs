//! The statistics `odm verify` judges claims with: Student's t distribution (CDF through the
//! regularized incomplete beta function, quantiles by bisection), the paired and Welch t tests,
//! two one-sided tests (TOST) for equivalence, and Holm's step-down correction.
//!
//! Zero spread (every difference equal, or both groups constant): the t statistic mean/se is
//! ±∞ when the mean differs from the bound tested, so its p-value is 0 (or 1 the other way), and
//! 0/0 when it equals it, which counts as p = 0.5 (no evidence either way). The confidence
//! interval is then the single point mean.

/// ln Γ(x) for x > 0: Lanczos (g = 7, 9 terms), relative error below 1e-14.
pub fn ln_gamma(x: f64) -> f64 {
    #[allow(clippy::excessive_precision)]
    const C: [f64; 9] = [
        0.999_999_999_999_809_93,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_13,
        -176.615_029_162_140_59,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_571_6e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The continued fraction of the incomplete beta function, by the modified Lentz method
/// (Numerical Recipes, 3rd ed., §6.4, `betacf`).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        // Even step.
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        // Odd step.
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() <= f64::EPSILON {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b), given x and y = 1 − x separately (so a
/// y near 0 keeps its precision).
fn beta_inc_xy(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * y.ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, y) / b
    }
}

/// The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 ≤ x ≤ 1.
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    beta_inc_xy(a, b, x, 1.0 - x)
}

/// P(T ≥ |t|) for Student's t with `df` > 0 degrees of freedom (any real df, as Welch's test
/// needs): ½ I_{df/(df+t²)}(df/2, ½), computed without cancellation for large |t|.
fn tail(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    let t2 = t * t;
    0.5 * beta_inc_xy(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))
}

/// The CDF of Student's t distribution, P(T ≤ t).
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if t > 0.0 {
        1.0 - tail(t, df)
    } else {
        tail(t, df)
    }
}

/// The survival function of Student's t distribution, P(T ≥ t) (precise in the upper tail).
pub fn t_sf(t: f64, df: f64) -> f64 {
    t_cdf(-t, df)
}

/// The quantile of Student's t distribution: the t with P(T ≤ t) = p, for 0 < p < 1, by
/// bisection on the tail probability (to a relative 1e-14).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if p.is_nan() || p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    let q = 1.0 - p;
    if q >= 0.5 {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while tail(hi, df) > q && hi < 1e300 {
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if tail(mid, df) > q {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-14 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Which t test a claim got.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Differences of runs with the same seed.
    Paired,
    /// Welch's unpaired test, Welch–Satterthwaite degrees of freedom.
    Welch,
}

/// A t test of a mean difference: estimate, standard error and degrees of freedom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TTest {
    pub kind: Kind,
    /// Mean difference (A − B).
    pub mean: f64,
    /// Its standard error.
    pub se: f64,
    pub df: f64,
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0),
    )
}

/// The paired t test on per-seed differences; `None` with fewer than two differences or a
/// non-finite one.
pub fn paired(d: &[f64]) -> Option<TTest> {
    if d.len() < 2 || d.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let (mean, var) = mean_var(d);
    Some(TTest {
        kind: Kind::Paired,
        mean,
        se: (var / d.len() as f64).sqrt(),
        df: (d.len() - 1) as f64,
    })
}

/// Welch's unpaired t test of mean(a) − mean(b); `None` unless each side has two finite
/// values. With no spread in either group the degrees of freedom are n_a + n_b − 2 (they do not
/// matter then: the statistic is ±∞ or 0/0).
pub fn welch(a: &[f64], b: &[f64]) -> Option<TTest> {
    if a.len() < 2 || b.len() < 2 || a.iter().chain(b).any(|x| !x.is_finite()) {
        return None;
    }
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    let den = sa * sa / (a.len() - 1) as f64 + sb * sb / (b.len() - 1) as f64;
    let df = if den > 0.0 {
        (sa + sb) * (sa + sb) / den
    } else {
        (a.len() + b.len() - 2) as f64
    };
    Some(TTest {
        kind: Kind::Welch,
        mean: ma - mb,
        se: (sa + sb).sqrt(),
        df,
    })
}

impl TTest {
    /// One-sided p of "the true difference exceeds `bound`": P(T ≥ (mean − bound)/se).
    pub fn p_above(&self, bound: f64) -> f64 {
        self.p_positive(self.mean - bound)
    }

    /// One-sided p of "the true difference is below `bound`".
    pub fn p_below(&self, bound: f64) -> f64 {
        self.p_positive(bound - self.mean)
    }

    /// P(T ≥ x/se): the one-sided p that an observed excess `x` is above zero; with zero spread
    /// 0 for x > 0, 1 for x < 0 and 0.5 on the bound.
    fn p_positive(&self, x: f64) -> f64 {
        if self.se > 0.0 {
            t_sf(x / self.se, self.df)
        } else if x > 0.0 {
            0.0
        } else if x < 0.0 {
            1.0
        } else {
            0.5
        }
    }

    /// TOST: the larger of the two one-sided p-values that the difference lies above −margin
    /// and below +margin.
    pub fn p_equivalent(&self, margin: f64) -> f64 {
        self.p_above(-margin).max(self.p_below(margin))
    }

    /// The two-sided confidence interval at `level` (e.g. 0.95): mean ± t_{(1+level)/2, df}·se.
    pub fn ci(&self, level: f64) -> (f64, f64) {
        let h = if self.se > 0.0 {
            t_quantile(0.5 + 0.5 * level, self.df) * self.se
        } else {
            0.0
        };
        (self.mean - h, self.mean + h)
    }
}

/// Holm's step-down adjustment: with p sorted ascending (ties in input order),
/// p_adj(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j)); returned in input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]).then(i.cmp(&j)));
    let mut out = vec![0.0; m];
    let mut run = 0.0_f64;
    for (j, &i) in order.iter().enumerate() {
        run = run.max(((m - j) as f64 * p[i]).min(1.0));
        out[i] = run;
    }
    out
}
