//! Boot profiles: each stage's duration over several boots (min, median, max and
//! spread), a small versioned JSON file to keep them, and the comparison of a new
//! profile with such a file (a baseline) that flags the stages slower than allowed.
//!
//! `cargo xtask trace --runs N` builds a profile from fresh boots, `rusty-trace` from
//! recorded streams (one boot each); both print, write and compare it the same way
//! through `crate::host::profile`, which also reads and writes the files. This
//! module is the pure part: the statistics, the file's text and the tables. The
//! file:
//!
//! ```json
//! {"schema": "rusty-loader/boot-profile", "version": 1, "unit": "us", "runs": 3,
//!  "stages": [{"name": "page tables", "min": 1.2, "median": 1.3, "max": 1.5}, ...]}
//! ```

use std::fmt::Write as _;

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::{json, Value};

use super::Report;

/// What the file's `schema` says.
const SCHEMA: &str = "rusty-loader/boot-profile";
/// The file format this module writes and reads.
const VERSION: u64 = 1;

/// What a profile's durations count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Microseconds: the TSC frequency was known.
    Micros,
    /// TSC ticks: it was not.
    Ticks,
}

impl Unit {
    /// The name in the profile file.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Micros => "us",
            Unit::Ticks => "ticks",
        }
    }

    fn from_name(name: &str) -> Option<Unit> {
        match name {
            "us" => Some(Unit::Micros),
            "ticks" => Some(Unit::Ticks),
            _ => None,
        }
    }

    /// A slowdown smaller than this is noise on the machines that run the
    /// comparisons, whatever its percentage: 20 µs, or 50 000 ticks.
    pub fn noise_floor(self) -> f64 {
        match self {
            Unit::Micros => 20.0,
            Unit::Ticks => 50_000.0,
        }
    }

    /// A duration for the tables: `1.53 ms`, `257.4 µs`, `738660 ticks` (the units
    /// of the reports; the profile file names its unit `us`).
    pub fn format(self, value: f64) -> String {
        match self {
            // Decided on the rounded value: 999.96 µs is `1.00 ms`, not `1000.0 µs`.
            Unit::Micros if value >= 999.95 => format!("{:.2} ms", value / 1000.0),
            Unit::Micros => format!("{value:.1} µs"),
            Unit::Ticks => format!("{value:.0} ticks"),
        }
    }
}

/// The durations of one boot's stages, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct StageTimes {
    pub unit: Unit,
    pub stages: Vec<(String, f64)>,
}

impl StageTimes {
    /// Every stage of a report (sub-stages too, as `stage / sub-stage`), plus the
    /// time spent writing the trace as `trace output` and the whole loader as
    /// `loader total`; in microseconds when the TSC frequency is
    /// known, in ticks otherwise.
    pub fn of(report: &Report) -> StageTimes {
        let timeline = &report.timeline;
        let unit = if timeline.loader_us.is_some() {
            Unit::Micros
        } else {
            Unit::Ticks
        };
        let amount = |us: Option<f64>, ticks: u64| match unit {
            Unit::Micros => us.unwrap_or(0.0),
            Unit::Ticks => ticks as f64,
        };
        let mut stages = Vec::new();
        for stage in &timeline.stages {
            stages.push((
                stage.name.clone(),
                amount(stage.duration_us, stage.duration_ticks),
            ));
            for child in &stage.children {
                // Some sub-stages name their parent already ("segment 1 copy").
                let name = if child.name.starts_with(&stage.name) {
                    child.name.clone()
                } else {
                    format!("{} / {}", stage.name, child.name)
                };
                stages.push((name, amount(child.duration_us, child.duration_ticks)));
            }
        }
        if let Some(output) = timeline.trace_output_ticks {
            stages.push((
                "trace output".to_string(),
                amount(timeline.trace_output_us, output),
            ));
        }
        stages.push((
            "loader total".to_string(),
            amount(timeline.total_us, timeline.total_ticks),
        ));
        StageTimes { unit, stages }
    }
}

/// One stage over all boots.
#[derive(Clone, Debug, PartialEq)]
pub struct StageStats {
    pub name: String,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl StageStats {
    /// (max - min) / median: how much the boots disagree.
    pub fn spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

/// Statistics per stage over several boots.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub unit: Unit,
    /// How many boots it covers.
    pub runs: usize,
    /// In the order the stages first appear.
    pub stages: Vec<StageStats>,
}

impl Profile {
    /// The profile of `boots`, which must all count in the same unit.
    pub fn from_boots(boots: &[StageTimes]) -> Result<Profile> {
        let first = boots.first().context("no boot to profile")?;
        if let Some(other) = boots.iter().find(|b| b.unit != first.unit) {
            bail!(
                "the boots count in different units ({} and {}): the TSC frequency is known for some only; pass -freq the same way to all",
                first.unit.name(),
                other.unit.name()
            );
        }
        let mut names: Vec<&str> = Vec::new();
        for boot in boots {
            for (name, _) in &boot.stages {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        let stages = names
            .into_iter()
            .map(|name| {
                let mut values: Vec<f64> = boots
                    .iter()
                    .flat_map(|b| b.stages.iter().filter(|(n, _)| n == name).map(|(_, v)| *v))
                    .collect();
                values.sort_by(f64::total_cmp);
                let middle = values.len() / 2;
                let median = if values.len() % 2 == 1 {
                    values[middle]
                } else {
                    (values[middle - 1] + values[middle]) / 2.0
                };
                StageStats {
                    name: name.to_string(),
                    min: values[0],
                    median,
                    max: values[values.len() - 1],
                }
            })
            .collect();
        Ok(Profile {
            unit: first.unit,
            runs: boots.len(),
            stages,
        })
    }

    /// The profile file (see the module's documentation).
    pub fn to_json(&self) -> String {
        let stages: Vec<Value> = self
            .stages
            .iter()
            .map(|s| json!({"name": s.name, "min": s.min, "median": s.median, "max": s.max}))
            .collect();
        let value = json!({
            "schema": SCHEMA,
            "version": VERSION,
            "unit": self.unit.name(),
            "runs": self.runs,
            "stages": stages,
        });
        serde_json::to_string_pretty(&value).expect("JSON values serialise") + "\n"
    }

    /// The statistics table: one line per stage.
    pub fn render_table(&self) -> String {
        let mut table = format!(
            "{:<28} {:>12} {:>12} {:>12} {:>8}\n",
            "stage", "min", "median", "max", "spread"
        );
        for stage in &self.stages {
            let _ = writeln!(
                table,
                "{:<28} {:>12} {:>12} {:>12} {:>7.0}%",
                stage.name,
                self.unit.format(stage.min),
                self.unit.format(stage.median),
                self.unit.format(stage.max),
                stage.spread() * 100.0
            );
        }
        table
    }
}

/// What a comparison needs of an earlier profile: each stage's median.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    pub unit: Unit,
    pub medians: Vec<(String, f64)>,
}

impl Baseline {
    /// Reads a profile file's text as a baseline.
    pub fn parse(text: &str) -> Result<Baseline> {
        let value: Value = serde_json::from_str(text).context("the baseline is not JSON")?;
        if value["schema"] != SCHEMA {
            bail!("the baseline is not a boot profile (write one with `cargo xtask trace --runs N --save-profile FILE` or `rusty-trace --save-profile FILE`)");
        }
        if value["version"] != VERSION {
            bail!(
                "the baseline has profile version {}, only version {VERSION} is read",
                value["version"]
            );
        }
        let unit_name = value["unit"].as_str().context("the baseline has no unit")?;
        let unit = Unit::from_name(unit_name).with_context(|| {
            format!("the baseline's unit {unit_name:?} is neither us nor ticks")
        })?;
        let medians = value["stages"]
            .as_array()
            .context("the baseline has no stages")?
            .iter()
            .map(|s| {
                let name = s["name"].as_str().context("a stage without a name")?;
                let median = s["median"].as_f64().context("a stage without a median")?;
                Ok((name.to_string(), median))
            })
            .collect::<Result<_>>()?;
        Ok(Baseline { unit, medians })
    }
}

/// One stage against the baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct StageChange {
    pub name: String,
    pub baseline: f64,
    pub current: f64,
    /// current / baseline - 1.
    pub change: f64,
    pub regressed: bool,
}

/// A profile compared with a baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub unit: Unit,
    /// How much slower a stage may be (0.10: 10 %).
    pub max_regression: f64,
    /// The stages both sides have, in the profile's order.
    pub stages: Vec<StageChange>,
    /// Stages only the baseline has (renamed, or another kernel): not compared.
    pub baseline_only: Vec<String>,
    /// Stages only the profile has: not compared.
    pub new: Vec<String>,
}

impl Comparison {
    /// Compares medians. A stage regresses when it is slower by more than
    /// `max_regression` *and* by more than the unit's noise floor: a 2 µs stage that
    /// takes 3 µs is noise, not a regression.
    pub fn new(current: &Profile, baseline: &Baseline, max_regression: f64) -> Result<Comparison> {
        ensure!(
            baseline.unit == current.unit,
            "the baseline is in {}, this profile in {}: pass -freq the same way to both",
            baseline.unit.name(),
            current.unit.name()
        );
        let floor = current.unit.noise_floor();
        let stages = current
            .stages
            .iter()
            .filter_map(|stage| {
                let (_, base) = baseline.medians.iter().find(|(n, _)| *n == stage.name)?;
                let change = if *base > 0.0 {
                    stage.median / base - 1.0
                } else {
                    0.0
                };
                Some(StageChange {
                    name: stage.name.clone(),
                    baseline: *base,
                    current: stage.median,
                    change,
                    regressed: change > max_regression && stage.median - base > floor,
                })
            })
            .collect();
        let baseline_only = baseline
            .medians
            .iter()
            .filter(|(name, _)| !current.stages.iter().any(|s| s.name == *name))
            .map(|(name, _)| name.clone())
            .collect();
        let new = current
            .stages
            .iter()
            .filter(|s| !baseline.medians.iter().any(|(name, _)| *name == s.name))
            .map(|s| s.name.clone())
            .collect();
        Ok(Comparison {
            unit: current.unit,
            max_regression,
            stages,
            baseline_only,
            new,
        })
    }

    /// How many stages regressed.
    pub fn regressions(&self) -> usize {
        self.stages.iter().filter(|s| s.regressed).count()
    }

    /// The comparison table, then the stages that were not compared.
    pub fn render(&self) -> String {
        let mut text = format!(
            "{:<28} {:>12} {:>12} {:>9}\n",
            "stage vs baseline", "baseline", "now", "change"
        );
        for stage in &self.stages {
            let flag = if stage.regressed { "  REGRESSION" } else { "" };
            let _ = writeln!(
                text,
                "{:<28} {:>12} {:>12} {:>+8.1}%{flag}",
                stage.name,
                self.unit.format(stage.baseline),
                self.unit.format(stage.current),
                stage.change * 100.0
            );
        }
        if !self.baseline_only.is_empty() {
            let _ = writeln!(
                text,
                "not compared, only in the baseline: {}",
                self.baseline_only.join(", ")
            );
        }
        if !self.new.is_empty() {
            let _ = writeln!(text, "not compared, new: {}", self.new.join(", "));
        }
        text
    }

    /// The verdict in one sentence: how many stages are too slow, or none.
    pub fn verdict(&self) -> String {
        let limit = self.max_regression * 100.0;
        match self.regressions() {
            0 => format!("no stage slower than the baseline by more than {limit:.0}%"),
            n => format!("{n} stage(s) slower than the baseline by more than {limit:.0}%"),
        }
    }
}

/// Parses `10%` or `10` as a fraction (0.10).
pub fn parse_percent(text: &str) -> Result<f64> {
    let number = text.trim().trim_end_matches('%');
    let value: f64 = number
        .parse()
        .map_err(|_| anyhow!("not a percentage: {text:?} (write e.g. 10%)"))?;
    if !(0.0..=10_000.0).contains(&value) {
        bail!("percentage out of range: {text:?} (0% to 10000%)");
    }
    Ok(value / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(stages: &[(&str, f64)]) -> StageTimes {
        StageTimes {
            unit: Unit::Micros,
            stages: stages.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        }
    }

    fn baseline(stages: &[(&str, f64)]) -> Baseline {
        Baseline {
            unit: Unit::Micros,
            medians: boot(stages).stages,
        }
    }

    #[test]
    fn statistics_per_stage_in_first_seen_order() {
        let boots = [
            boot(&[("copy", 10.0), ("paging", 3.0)]),
            boot(&[("copy", 30.0), ("paging", 1.0)]),
            boot(&[("copy", 20.0)]),
        ];
        let profile = Profile::from_boots(&boots).unwrap();
        assert_eq!(profile.runs, 3);
        assert_eq!(
            profile.stages[0],
            StageStats {
                name: "copy".into(),
                min: 10.0,
                median: 20.0,
                max: 30.0
            }
        );
        assert_eq!(
            profile.stages[1],
            StageStats {
                name: "paging".into(),
                min: 1.0,
                median: 2.0,
                max: 3.0
            }
        );
        assert!((profile.stages[0].spread() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn boots_must_agree_on_the_unit() {
        assert!(Profile::from_boots(&[]).is_err());
        let ticks = StageTimes {
            unit: Unit::Ticks,
            stages: vec![("copy".into(), 1000.0)],
        };
        let error = Profile::from_boots(&[boot(&[("copy", 1.0)]), ticks])
            .unwrap_err()
            .to_string();
        assert!(error.contains("different units (us and ticks)"), "{error}");
    }

    #[test]
    fn profile_round_trips() {
        let profile = Profile::from_boots(&[boot(&[("copy", 10.0), ("fdt", 5.5)])]).unwrap();
        let read = Baseline::parse(&profile.to_json()).unwrap();
        assert_eq!(read, baseline(&[("copy", 10.0), ("fdt", 5.5)]));
    }

    #[test]
    fn refuses_other_files_as_baseline() {
        for (text, why) in [
            ("not json", "not JSON"),
            (r#"{"schema": "rusty-trace/report"}"#, "not a boot profile"),
            (
                r#"{"schema": "rusty-loader/boot-profile", "version": 2}"#,
                "profile version 2",
            ),
            (
                r#"{"schema": "rusty-loader/boot-profile", "version": 1, "unit": "s", "stages": []}"#,
                "neither us nor ticks",
            ),
        ] {
            let error = format!("{:#}", Baseline::parse(text).unwrap_err());
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn flags_only_real_regressions() {
        let current = Profile::from_boots(&[boot(&[
            ("copy", 120.0),
            ("fdt", 3.0),
            ("paging", 100.0),
            ("new", 1.0),
        ])])
        .unwrap();
        let base = baseline(&[("copy", 100.0), ("fdt", 1.0), ("paging", 105.0)]);
        let comparison = Comparison::new(&current, &base, 0.10).unwrap();
        let flagged: Vec<(&str, bool)> = comparison
            .stages
            .iter()
            .map(|c| (c.name.as_str(), c.regressed))
            .collect();
        // copy: +20 % and +20 µs is at the noise floor, not above it; fdt: +200 % but
        // only 2 µs; paging: faster; new: no baseline.
        assert_eq!(
            flagged,
            vec![("copy", false), ("fdt", false), ("paging", false)]
        );
        let slower = Profile::from_boots(&[boot(&[("copy", 121.0)])]).unwrap();
        let comparison = Comparison::new(&slower, &base, 0.10).unwrap();
        assert_eq!(comparison.regressions(), 1);
        assert!(comparison.render().contains("REGRESSION"));
        assert_eq!(
            comparison.verdict(),
            "1 stage(s) slower than the baseline by more than 10%"
        );
    }

    #[test]
    fn stages_on_one_side_only_are_named() {
        let current =
            Profile::from_boots(&[boot(&[("copy", 1.0), ("command line", 2.0)])]).unwrap();
        let base = baseline(&[("copy", 1.0), ("memory map & command line", 3.0)]);
        let comparison = Comparison::new(&current, &base, 0.10).unwrap();
        assert_eq!(comparison.baseline_only, ["memory map & command line"]);
        assert_eq!(comparison.new, ["command line"]);
        let text = comparison.render();
        assert!(text.contains("not compared, only in the baseline: memory map & command line"));
        assert!(text.contains("not compared, new: command line"));
        assert_eq!(
            comparison.verdict(),
            "no stage slower than the baseline by more than 10%"
        );
    }

    #[test]
    fn a_baseline_in_another_unit_is_refused() {
        let current = Profile::from_boots(&[boot(&[("copy", 1.0)])]).unwrap();
        let base = Baseline {
            unit: Unit::Ticks,
            medians: vec![],
        };
        let error = Comparison::new(&current, &base, 0.1)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the baseline is in ticks, this profile in us"),
            "{error}"
        );
    }

    #[test]
    fn tables_show_durations_in_their_unit() {
        let profile =
            Profile::from_boots(&[boot(&[("page tables", 1530.0), ("tls", 25.75)])]).unwrap();
        let table = profile.render_table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("stage "), "{table}");
        assert!(
            lines[1].starts_with("page tables ") && lines[1].contains("1.53 ms"),
            "{table}"
        );
        assert!(
            lines[2].contains("25.8 µs") && lines[2].ends_with("0%"),
            "{table}"
        );
        assert_eq!(Unit::Ticks.format(738660.0), "738660 ticks");
        assert_eq!(Unit::Micros.format(257.44), "257.4 µs");
        assert_eq!(Unit::Micros.format(999.96), "1.00 ms");
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("10%").unwrap(), 0.10);
        assert_eq!(parse_percent(" 25 ").unwrap(), 0.25);
        assert!(parse_percent("ten")
            .unwrap_err()
            .to_string()
            .contains("not a percentage"));
        assert!(parse_percent("-5%")
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(parse_percent("NaN").is_err());
    }
}
