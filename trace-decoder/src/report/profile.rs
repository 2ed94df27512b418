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
//! {"schema": "rusty-loader/boot-profile", "version": 2, "unit": "us", "runs": 3,
//!  "context": {"time-base": "wall", "loader-build": "0xbc3a2d07", ...},
//!  "stages": [{"name": "page tables", "min": 1.2, "median": 1.3, "max": 1.5}, ...]}
//! ```
//!
//! The context ([`RunContext`]) says what makes two profiles' times comparable:
//! how time was counted (wall clock, or instructions under QEMU's `-icount`), the
//! loader build, its profile and trace level, the application, the machine type,
//! the entry and QEMU's version. A comparison refuses a baseline whose time base
//! is of the other kind, and names every other difference in its output.

use std::fmt::Write as _;

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::{json, Value};

use super::{RegionKind, Report};

/// What the file's `schema` says.
const SCHEMA: &str = "rusty-loader/boot-profile";
/// The file format this module writes; version 1 (without a context) is read too.
const VERSION: u64 = 2;

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

/// The fields of a [`RunContext`]: the key in the profile file (and in a
/// recording's `.status` file) and the name people read.
pub const CONTEXT_FIELDS: [(&str, &str); 9] = [
    ("time-base", "time base"),
    ("loader-build", "loader build"),
    ("loader-profile", "loader profile"),
    ("trace-level", "trace level"),
    ("app", "application"),
    ("kernel", "kernel"),
    ("machine", "machine"),
    ("entry", "entry"),
    ("qemu-version", "QEMU"),
];

/// The fields a boot's trace gives ([`RunContext::of_report`]); the others are the
/// run's (`cargo xtask trace` knows them, a recording keeps them beside it).
const TRACE_FIELDS: [&str; 4] = ["loader-build", "trace-level", "kernel", "entry"];

/// The two kinds of time base: times that count the host's wall clock, and times
/// that count guest instructions (QEMU's `-icount`): never comparable.
pub const TIME_BASES: [&str; 2] = ["wall", "instructions"];

/// What makes boots comparable, each field (of [`CONTEXT_FIELDS`]) known or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunContext {
    values: std::collections::BTreeMap<&'static str, String>,
}

/// A field whose value differs between a baseline and a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextDifference {
    /// The field's name for people.
    pub label: &'static str,
    pub baseline: Option<String>,
    pub now: Option<String>,
}

impl RunContext {
    /// The value of the field `key`, when known.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Sets the field `key` (one of [`CONTEXT_FIELDS`]; others are ignored).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        if let Some((key, _)) = CONTEXT_FIELDS.iter().find(|(k, _)| *k == key) {
            self.values.insert(key, value.into());
        }
    }

    /// What a boot's report says of its run: the loader build, its trace level, the
    /// kernel the trace describes and the entry.
    pub fn of_report(report: &Report) -> RunContext {
        let mut context = RunContext::default();
        if let Some(build) = report.loader.build {
            context.set("loader-build", format!("{build:#010x}"));
        }
        if let Some(level) = report.loader.trace_level {
            context.set("trace-level", level);
        }
        if let Some(k) = &report.kernel {
            let mut kernel = format!("{}, {} ({})", k.kind, k.version, k.generation);
            if let Some(segments) = k.segments {
                kernel += &format!(", {segments} segments");
            }
            if let Some(entry) = k.entry {
                kernel += &format!(", entry {entry:#x}");
            }
            if let Some(module) = report.memory.iter().find(|r| r.kind == RegionKind::Module) {
                kernel += &format!(", {} bytes", module.size);
            }
            context.set("kernel", kernel);
        }
        if let Some(entry) = &report.loader.entry {
            context.set("entry", entry.clone());
        }
        context
    }

    /// This context with the fields `run` knows and this one does not.
    pub fn with_run(mut self, run: &RunContext) -> RunContext {
        for (key, value) in &run.values {
            self.values.entry(key).or_insert_with(|| value.clone());
        }
        self
    }

    /// The kind of time base (`wall`, `instructions`), the first word of the field.
    pub fn time_base_kind(&self) -> Option<&str> {
        self.get("time-base")?.split_whitespace().next()
    }

    /// The context of several boots: a field they agree on keeps its value, one
    /// they do not becomes `mixed: a | b`; boots of both kinds of time base make no
    /// profile.
    pub fn merged<'a>(boots: impl IntoIterator<Item = &'a RunContext>) -> Result<RunContext> {
        let boots: Vec<&RunContext> = boots.into_iter().collect();
        let mut merged = RunContext::default();
        for (key, _) in CONTEXT_FIELDS {
            let mut seen: Vec<String> = Vec::new();
            for boot in &boots {
                let value = boot.get(key).unwrap_or("unknown").to_string();
                if !seen.contains(&value) {
                    seen.push(value);
                }
            }
            match seen.as_slice() {
                [] => {}
                [one] if one == "unknown" => {}
                [one] => merged.set(key, one.clone()),
                many => merged.set(key, format!("mixed: {}", many.join(" | "))),
            }
        }
        let kinds: Vec<&str> = boots.iter().filter_map(|b| b.time_base_kind()).collect();
        if let Some(other) = kinds.iter().find(|kind| **kind != kinds[0]) {
            bail!(
                "the boots count time differently ({} and {other}): wall-clock and instruction times do not make one profile",
                kinds[0]
            );
        }
        Ok(merged)
    }

    /// The fields that differ from `baseline`'s (one side unknown counts too).
    pub fn differences(&self, baseline: &RunContext) -> Vec<ContextDifference> {
        CONTEXT_FIELDS
            .iter()
            .filter(|(key, _)| self.get(key) != baseline.get(key))
            .map(|(key, label)| ContextDifference {
                label,
                baseline: baseline.get(key).map(str::to_string),
                now: self.get(key).map(str::to_string),
            })
            .collect()
    }

    /// The context as the profile file's `context` object: every field, `null`
    /// when unknown.
    pub fn to_json(&self) -> Value {
        let map: serde_json::Map<String, Value> = CONTEXT_FIELDS
            .iter()
            .map(|(key, _)| {
                let value = self.get(key).map_or(Value::Null, Value::from);
                (key.to_string(), value)
            })
            .collect();
        Value::Object(map)
    }

    fn from_json(value: &Value) -> RunContext {
        let mut context = RunContext::default();
        for (key, _) in CONTEXT_FIELDS {
            if let Some(text) = value[key].as_str() {
                context.set(key, text);
            }
        }
        context
    }

    /// The fields the trace does not give, as a recording keeps them beside its
    /// stream (`key: value` lines of its `.status` file, after QEMU's end).
    pub fn to_recorded(&self) -> String {
        CONTEXT_FIELDS
            .iter()
            .filter(|(key, _)| !TRACE_FIELDS.contains(key))
            .filter_map(|(key, _)| Some(format!("{key}: {}\n", self.get(key)?)))
            .collect()
    }

    /// Reads the fields [`RunContext::to_recorded`] wrote, among other lines.
    pub fn from_recorded(text: &str) -> RunContext {
        let mut context = RunContext::default();
        for line in text.lines() {
            if let Some((key, value)) = line.split_once(": ") {
                if !TRACE_FIELDS.contains(&key) {
                    context.set(key, value.trim());
                }
            }
        }
        context
    }
}

/// The durations of one boot's stages, in order, and how the boot ran.
#[derive(Clone, Debug, PartialEq)]
pub struct StageTimes {
    pub unit: Unit,
    pub stages: Vec<(String, f64)>,
    pub context: RunContext,
}

impl StageTimes {
    /// Every stage of a report (sub-stages too, as `stage / sub-stage`), plus the
    /// time spent writing the trace as `trace output` and the whole loader as
    /// `loader total`; in microseconds when the TSC frequency is
    /// known, in ticks otherwise. The context is what the report says
    /// ([`RunContext::of_report`]); the caller adds the run's.
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
        StageTimes {
            unit,
            stages,
            context: RunContext::of_report(report),
        }
    }

    /// These times with the fields of the run's context the report does not know.
    pub fn with_run(mut self, run: &RunContext) -> StageTimes {
        self.context = self.context.with_run(run);
        self
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
    /// How the boots ran ([`RunContext::merged`]).
    pub context: RunContext,
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
            context: RunContext::merged(boots.iter().map(|b| &b.context))?,
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
            "context": self.context.to_json(),
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

/// What a comparison needs of an earlier profile: each stage's median, and how
/// its boots ran.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    pub unit: Unit,
    pub medians: Vec<(String, f64)>,
    pub context: RunContext,
    /// The file's version: 1 kept no context.
    pub version: u64,
}

impl Baseline {
    /// Reads a profile file's text as a baseline.
    pub fn parse(text: &str) -> Result<Baseline> {
        let value: Value = serde_json::from_str(text).context("the baseline is not JSON")?;
        if value["schema"] != SCHEMA {
            bail!("the baseline is not a boot profile (write one with `cargo xtask trace --runs N --save-profile FILE` or `rusty-trace --save-profile FILE`)");
        }
        let version = value["version"].as_u64().unwrap_or(0);
        if !(1..=VERSION).contains(&version) {
            bail!(
                "the baseline has profile version {}, only versions 1 to {VERSION} are read",
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
        Ok(Baseline {
            unit,
            medians,
            context: RunContext::from_json(&value["context"]),
            version,
        })
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
    /// How the profile's boots ran differently from the baseline's.
    pub differences: Vec<ContextDifference>,
    /// The baseline says nothing of how its boots ran (profile version 1).
    pub baseline_without_context: bool,
}

impl Comparison {
    /// Compares medians. A stage regresses when it is slower by more than
    /// `max_regression` *and* by more than the unit's noise floor: a 2 µs stage that
    /// takes 3 µs is noise, not a regression.
    /// Times of two kinds of time base (wall clock, instructions) never compare:
    /// such a baseline is refused, in one line naming both.
    pub fn new(current: &Profile, baseline: &Baseline, max_regression: f64) -> Result<Comparison> {
        if let (Some(before), Some(now)) = (
            baseline.context.time_base_kind(),
            current.context.time_base_kind(),
        ) {
            ensure!(
                before == now,
                "the baseline's times count {} and this profile's {}: wall-clock and instruction times do not compare (profile both with --deterministic, or both without)",
                baseline.context.get("time-base").unwrap_or(before),
                current.context.get("time-base").unwrap_or(now)
            );
        }
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
        let without_context = baseline.version < 2;
        Ok(Comparison {
            unit: current.unit,
            max_regression,
            stages,
            baseline_only,
            new,
            differences: if without_context {
                Vec::new()
            } else {
                current.context.differences(&baseline.context)
            },
            baseline_without_context: without_context,
        })
    }

    /// How many stages regressed.
    pub fn regressions(&self) -> usize {
        self.stages.iter().filter(|s| s.regressed).count()
    }

    /// How the boots ran differently, one line per field (`baseline → now`), or
    /// that the baseline does not say.
    fn render_differences(&self) -> String {
        if self.baseline_without_context {
            return "the baseline (profile version 1) does not say how its boots ran: check that both ran the same way\n".to_string();
        }
        if self.differences.is_empty() {
            return String::new();
        }
        let mut text = String::from("the boots ran differently from the baseline's:\n");
        for difference in &self.differences {
            let side = |value: &Option<String>| value.clone().unwrap_or("unknown".to_string());
            let _ = writeln!(
                text,
                "  {:<15} {} → {}",
                difference.label,
                side(&difference.baseline),
                side(&difference.now)
            );
        }
        text
    }

    /// The differences in how the boots ran, the comparison table, then the stages
    /// that were not compared.
    pub fn render(&self) -> String {
        let mut text = self.render_differences();
        let _ = writeln!(
            text,
            "{:<28} {:>12} {:>12} {:>9}",
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
        let mut verdict = match self.regressions() {
            0 => format!("no stage slower than the baseline by more than {limit:.0}%"),
            n => format!("{n} stage(s) slower than the baseline by more than {limit:.0}%"),
        };
        if !self.differences.is_empty() {
            let fields: Vec<&str> = self.differences.iter().map(|d| d.label).collect();
            verdict += &format!(" (the boots ran differently: {})", fields.join(", "));
        }
        verdict
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
            context: RunContext::default(),
        }
    }

    fn baseline(stages: &[(&str, f64)]) -> Baseline {
        Baseline {
            unit: Unit::Micros,
            medians: boot(stages).stages,
            context: RunContext::default(),
            version: VERSION,
        }
    }

    fn context(fields: &[(&str, &str)]) -> RunContext {
        let mut context = RunContext::default();
        for (key, value) in fields {
            context.set(key, *value);
        }
        context
    }

    fn with_context(mut times: StageTimes, fields: &[(&str, &str)]) -> StageTimes {
        times.context = context(fields);
        times
    }

    #[test]
    fn a_baseline_of_the_other_time_base_is_refused_in_one_line() {
        let wall = Profile::from_boots(&[with_context(
            boot(&[("loader total", 17_820.0)]),
            &[("time-base", "wall")],
        )])
        .unwrap();
        let deterministic = Profile::from_boots(&[with_context(
            boot(&[("loader total", 28.6)]),
            &[("time-base", "instructions (-icount shift=0,sleep=off)")],
        )])
        .unwrap();
        let base = Baseline::parse(&wall.to_json()).unwrap();
        let error = Comparison::new(&deterministic, &base, 0.1)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "the baseline's times count wall and this profile's instructions (-icount shift=0,sleep=off): wall-clock and instruction times do not compare (profile both with --deterministic, or both without)"
        );
        // Another -icount shift is the same kind: compared, and named.
        let shifted = Profile::from_boots(&[with_context(
            boot(&[("loader total", 60.0)]),
            &[("time-base", "instructions (-icount shift=4)")],
        )])
        .unwrap();
        let base = Baseline::parse(&deterministic.to_json()).unwrap();
        let comparison = Comparison::new(&shifted, &base, 0.1).unwrap();
        assert_eq!(comparison.differences.len(), 1);
        assert!(comparison.render().contains(
            "  time base       instructions (-icount shift=0,sleep=off) → instructions (-icount shift=4)\n"
        ));
        // Boots of both kinds make no profile.
        let error = Profile::from_boots(&[
            with_context(boot(&[("copy", 1.0)]), &[("time-base", "wall")]),
            with_context(
                boot(&[("copy", 1.0)]),
                &[("time-base", "instructions (-icount shift=0)")],
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("count time differently"), "{error}");
    }

    #[test]
    fn every_other_difference_is_named_with_the_verdict() {
        let run = |profile: &str, level: &str| {
            Profile::from_boots(&[with_context(
                boot(&[(
                    "page tables",
                    if profile == "debug" { 900.0 } else { 100.0 },
                )]),
                &[
                    ("time-base", "wall"),
                    ("loader-profile", profile),
                    ("trace-level", level),
                    ("machine", "pc"),
                ],
            )])
            .unwrap()
        };
        let base = Baseline::parse(&run("release", "info").to_json()).unwrap();
        let comparison = Comparison::new(&run("debug", "debug"), &base, 0.1).unwrap();
        let labels: Vec<&str> = comparison.differences.iter().map(|d| d.label).collect();
        assert_eq!(labels, ["loader profile", "trace level"]);
        let text = comparison.render();
        assert!(
            text.starts_with("the boots ran differently from the baseline's:\n  loader profile  release → debug\n  trace level     info → debug\n"),
            "{text}"
        );
        assert_eq!(
            comparison.verdict(),
            "1 stage(s) slower than the baseline by more than 10% (the boots ran differently: loader profile, trace level)"
        );
        // The same run: nothing to name.
        let same = Comparison::new(&run("release", "info"), &base, 0.1).unwrap();
        assert!(same.differences.is_empty());
        assert!(same.render().starts_with("stage vs baseline"));
    }

    #[test]
    fn a_version_1_baseline_is_compared_and_said_to_have_no_context() {
        let text = r#"{"schema": "rusty-loader/boot-profile", "version": 1, "unit": "us", "runs": 1,
            "stages": [{"name": "copy", "min": 1.0, "median": 1.0, "max": 1.0}]}"#;
        let base = Baseline::parse(text).unwrap();
        assert_eq!(base.context, RunContext::default());
        let current = Profile::from_boots(&[with_context(
            boot(&[("copy", 1.0)]),
            &[("time-base", "wall")],
        )])
        .unwrap();
        let comparison = Comparison::new(&current, &base, 0.1).unwrap();
        assert!(comparison
            .render()
            .starts_with("the baseline (profile version 1) does not say how its boots ran"));
    }

    #[test]
    fn contexts_merge_and_travel_beside_a_recording() {
        let merged = RunContext::merged([
            &context(&[("machine", "pc"), ("loader-build", "0x1")]),
            &context(&[("machine", "pc"), ("loader-build", "0x2")]),
        ])
        .unwrap();
        assert_eq!(merged.get("machine"), Some("pc"));
        assert_eq!(merged.get("loader-build"), Some("mixed: 0x1 | 0x2"));
        let run = context(&[
            ("time-base", "wall"),
            ("machine", "microvm"),
            ("qemu-version", "7.2.19"),
            // The trace's own field is not kept beside it.
            ("loader-build", "0x1"),
        ]);
        let recorded = run.to_recorded();
        assert_eq!(
            recorded,
            "time-base: wall\nmachine: microvm\nqemu-version: 7.2.19\n"
        );
        let read = RunContext::from_recorded(&format!("3\nqemu-error: x\n{recorded}"));
        assert_eq!(read.get("machine"), Some("microvm"));
        assert_eq!(read.get("loader-build"), None);
        assert_eq!(read.get("time-base"), Some("wall"));
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
            context: RunContext::default(),
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
                r#"{"schema": "rusty-loader/boot-profile", "version": 3}"#,
                "profile version 3",
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
            context: RunContext::default(),
            version: VERSION,
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
