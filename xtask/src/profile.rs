//! Boot profiling over repeated runs: per-stage statistics, a small JSON file to keep
//! them (`--runs N --json FILE`), and the comparison with such a file
//! (`--baseline FILE`) that flags stages slower than allowed.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The durations of one run's stages, in order, in microseconds (or ticks when the
/// TSC frequency is unknown: see `unit`).
pub type StageTimes = Vec<(String, f64)>;

/// One stage over all runs.
#[derive(Clone, Debug, PartialEq)]
pub struct StageStats {
    pub name: String,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl StageStats {
    /// (max - min) / median: how much the runs disagree.
    pub fn spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

/// Statistics per stage, in the order the stages first appear.
pub fn stage_stats(runs: &[StageTimes]) -> Vec<StageStats> {
    let mut names: Vec<&str> = Vec::new();
    for run in runs {
        for (name, _) in run {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let mut values: Vec<f64> = runs
                .iter()
                .flat_map(|run| run.iter().filter(|(n, _)| n == name).map(|(_, v)| *v))
                .collect();
            values.sort_by(f64::total_cmp);
            let median = if values.len() % 2 == 1 {
                values[values.len() / 2]
            } else {
                (values[values.len() / 2 - 1] + values[values.len() / 2]) / 2.0
            };
            StageStats {
                name: name.to_string(),
                min: values[0],
                median,
                max: values[values.len() - 1],
            }
        })
        .collect()
}

/// The profile file: `{"schema": "rusty-loader/boot-profile", "version": 1, "unit":
/// "us", "runs": N, "stages": [{"name", "min", "median", "max"}]}`.
pub fn profile_json(stats: &[StageStats], runs: usize, unit: &str) -> String {
    let stages: Vec<Value> = stats
        .iter()
        .map(|s| json!({"name": s.name, "min": s.min, "median": s.median, "max": s.max}))
        .collect();
    let value = json!({
        "schema": "rusty-loader/boot-profile",
        "version": 1,
        "unit": unit,
        "runs": runs,
        "stages": stages,
    });
    serde_json::to_string_pretty(&value).expect("JSON values serialise") + "\n"
}

/// Reads a profile file: the unit and each stage's median.
pub fn read_profile(text: &str) -> Result<(String, StageTimes)> {
    let value: Value = serde_json::from_str(text).context("the baseline is not JSON")?;
    if value["schema"] != "rusty-loader/boot-profile" {
        bail!("the baseline is not a boot profile (write one with `cargo xtask trace --runs N --json FILE`)");
    }
    if value["version"] != 1 {
        bail!(
            "the baseline has profile version {}, this xtask reads version 1",
            value["version"]
        );
    }
    let unit = value["unit"]
        .as_str()
        .context("the baseline has no unit")?
        .to_string();
    let stages = value["stages"]
        .as_array()
        .context("the baseline has no stages")?
        .iter()
        .map(|s| {
            let name = s["name"].as_str().context("a stage without a name")?;
            let median = s["median"].as_f64().context("a stage without a median")?;
            Ok((name.to_string(), median))
        })
        .collect::<Result<_>>()?;
    Ok((unit, stages))
}

/// One stage against the baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub name: String,
    pub baseline: f64,
    pub current: f64,
    /// current / baseline - 1.
    pub change: f64,
    pub regressed: bool,
}

/// Compares medians. A stage regresses when it is slower by more than `max_change`
/// *and* by more than `floor` in absolute terms: a 2 µs stage that takes 3 µs is
/// noise, not a regression.
pub fn compare(
    current: &[StageStats],
    baseline: &StageTimes,
    max_change: f64,
    floor: f64,
) -> Vec<Comparison> {
    current
        .iter()
        .filter_map(|stage| {
            let (_, base) = baseline.iter().find(|(name, _)| *name == stage.name)?;
            let change = if *base > 0.0 {
                stage.median / base - 1.0
            } else {
                0.0
            };
            let regressed = change > max_change && stage.median - base > floor;
            Some(Comparison {
                name: stage.name.clone(),
                baseline: *base,
                current: stage.median,
                change,
                regressed,
            })
        })
        .collect()
}

/// The stages only one side has (renamed or new stages, another kernel), which
/// [`compare`] leaves out: `(only in the baseline, only now)`.
pub fn unmatched(current: &[StageStats], baseline: &StageTimes) -> (Vec<String>, Vec<String>) {
    let baseline_only = baseline
        .iter()
        .filter(|(name, _)| !current.iter().any(|s| s.name == *name))
        .map(|(name, _)| name.clone())
        .collect();
    let current_only = current
        .iter()
        .filter(|s| !baseline.iter().any(|(name, _)| *name == s.name))
        .map(|s| s.name.clone())
        .collect();
    (baseline_only, current_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stages: &[(&str, f64)]) -> StageTimes {
        stages.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn statistics_per_stage_in_first_seen_order() {
        let runs = [
            run(&[("copy", 10.0), ("paging", 3.0)]),
            run(&[("copy", 30.0), ("paging", 1.0)]),
            run(&[("copy", 20.0)]),
        ];
        let stats = stage_stats(&runs);
        assert_eq!(
            stats[0],
            StageStats {
                name: "copy".into(),
                min: 10.0,
                median: 20.0,
                max: 30.0
            }
        );
        assert_eq!(
            stats[1],
            StageStats {
                name: "paging".into(),
                min: 1.0,
                median: 2.0,
                max: 3.0
            }
        );
        assert!((stats[0].spread() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn profile_round_trips() {
        let stats = stage_stats(&[run(&[("copy", 10.0), ("fdt", 5.5)])]);
        let (unit, medians) = read_profile(&profile_json(&stats, 1, "us")).unwrap();
        assert_eq!(unit, "us");
        assert_eq!(medians, run(&[("copy", 10.0), ("fdt", 5.5)]));
    }

    #[test]
    fn refuses_other_files_as_baseline() {
        assert!(read_profile("not json").is_err());
        assert!(read_profile(r#"{"schema": "rusty-trace/report"}"#).is_err());
        assert!(read_profile(r#"{"schema": "rusty-loader/boot-profile", "version": 2}"#).is_err());
    }

    #[test]
    fn flags_only_real_regressions() {
        let current = stage_stats(&[run(&[
            ("copy", 120.0),
            ("fdt", 3.0),
            ("paging", 100.0),
            ("new", 1.0),
        ])]);
        let baseline = run(&[("copy", 100.0), ("fdt", 1.0), ("paging", 105.0)]);
        let result = compare(&current, &baseline, 0.10, 5.0);
        let flagged: Vec<(&str, bool)> = result
            .iter()
            .map(|c| (c.name.as_str(), c.regressed))
            .collect();
        // copy: +20 % and +20 µs; fdt: +200 % but only 2 µs; paging: faster; new: no baseline.
        assert_eq!(
            flagged,
            vec![("copy", true), ("fdt", false), ("paging", false)]
        );
    }

    #[test]
    fn stages_on_one_side_only_are_named() {
        let current = stage_stats(&[run(&[("copy", 1.0), ("command line", 2.0)])]);
        let baseline = run(&[("copy", 1.0), ("memory map & command line", 3.0)]);
        assert_eq!(
            unmatched(&current, &baseline),
            (
                vec!["memory map & command line".to_string()],
                vec!["command line".to_string()]
            )
        );
    }
}
