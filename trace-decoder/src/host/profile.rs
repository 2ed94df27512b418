//! The profile flow of both command lines, once: the stage times of several boots
//! (`rusty-trace`: one per recorded stream; `cargo xtask trace --runs N`: fresh
//! boots) become per-stage statistics ([`crate::report::profile`]), which are shown,
//! kept as a profile file and compared with a baseline file ([`profile_boots`]).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use super::color::ColorChoice;
use super::consumer::{Console, ConsoleStyle, Consumed};
use super::input::{self, Input};
use super::loader_elf::{LiveRead, LoaderElfs};
use super::outputs::write_file;
use super::pump::InputEnd;
use super::{output_failure, write_stdout, Failure};
use crate::report::outcome::OutcomeKind;
use crate::report::profile::{Baseline, Comparison, Profile, StageTimes};
use crate::report::Report;

impl Baseline {
    /// Reads a profile file as a baseline, naming the file in errors.
    pub fn read(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read the baseline {}: {e}", path.display()))?;
        Baseline::parse(&text)
            .with_context(|| format!("{} is not a usable baseline", path.display()))
    }
}

/// How a profile compared with its baseline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileVerdict {
    /// There was no baseline to compare with.
    NotCompared,
    /// No stage is slower than the baseline allows (the verdict was written).
    Within,
    /// Stages are slower than the baseline allows: the verdict in one sentence, for
    /// the caller's error line (not written to the output).
    Regressed(String),
}

/// The profile flow: the statistics of `boots` written to `out` as a table, saved
/// as a profile file at `save` (`on_saved` is told, to confirm it), then compared
/// with `baseline` and the slowdown it allows (0.10: 10 %): the comparison's table
/// and, when no stage regressed, its verdict written to `out`.
///
/// Boots that do not make a profile (none, or counting in different units) are a
/// [`Failure::Input`]; a profile that cannot be written or compared (the baseline
/// in another unit) a [`Failure::Setup`]; `out` failing a [`Failure::Input`] (empty
/// when its reader went away).
pub fn profile_boots(
    boots: &[StageTimes],
    save: Option<&Path>,
    baseline: Option<(&Baseline, f64)>,
    out: &mut dyn Write,
    on_saved: &mut dyn FnMut(&Path),
) -> Result<ProfileVerdict, Failure> {
    let profile = Profile::from_boots(boots).map_err(Failure::input)?;
    out.write_all(profile.render_table().as_bytes())
        .map_err(output_failure)?;
    if let Some(path) = save {
        write_file(path, "the profile", profile.to_json()).map_err(Failure::setup)?;
        on_saved(path);
    }
    let Some((baseline, max_regression)) = baseline else {
        return Ok(ProfileVerdict::NotCompared);
    };
    let comparison = Comparison::new(&profile, baseline, max_regression)
        .map_err(|e| Failure::Setup(format!("{e:#}")))?;
    let mut text = format!("\n{}", comparison.render());
    let verdict = if comparison.regressions() > 0 {
        ProfileVerdict::Regressed(comparison.verdict())
    } else {
        text.push_str(&comparison.verdict());
        text.push('\n');
        ProfileVerdict::Within
    };
    out.write_all(text.as_bytes()).map_err(output_failure)?;
    Ok(verdict)
}

/// `rusty-trace --baseline` and `--save-profile`: each input (standard input when
/// there is none) one boot, decoded without showing it, with how it ran as far as
/// the trace and the file beside it say ([`input::recorded_context`]); their
/// statistics shown on standard output, kept and compared through
/// [`profile_boots`].
pub fn profile_streams(
    inputs: &[PathBuf],
    elfs: &LoaderElfs,
    color: ColorChoice,
    save: Option<&Path>,
    baseline: Option<(&Baseline, f64)>,
) -> Result<(), Failure> {
    let paths: Vec<Option<&Path>> = if inputs.is_empty() {
        vec![None]
    } else {
        inputs.iter().map(|p| Some(p.as_path())).collect()
    };
    let mut boots = Vec::new();
    for path in paths {
        let input = input::open(path).map_err(Failure::input)?;
        let run = input::recorded_context(path);
        boots.push(boot_times(elfs, input, color)?.with_run(&run));
    }
    // Shown once all of it is known: a profile that cannot be kept shows nothing.
    let mut text = Vec::new();
    let verdict = profile_boots(&boots, save, baseline, &mut text, &mut |path| {
        eprintln!("rusty-trace: wrote {}", path.display())
    })?;
    write_stdout(&text)?;
    match verdict {
        ProfileVerdict::Regressed(verdict) => Err(Failure::Regression(verdict)),
        ProfileVerdict::NotCompared | ProfileVerdict::Within => Ok(()),
    }
}

/// One input's stage times: its boot must have handed over to the kernel, or its
/// stages would not compare with a whole boot's.
fn boot_times(elfs: &LoaderElfs, input: Input, color: ColorChoice) -> Result<StageTimes, Failure> {
    // Nothing of the stream is shown but its warnings, each naming the input.
    let console = Console::new(
        io::sink(),
        io::stderr(),
        ConsoleStyle {
            live_on_stdout: true,
            events: false,
            line: Default::default(),
            warning_prefix: format!("rusty-trace: {}: ", input.name),
            warning_color: color.enabled_for(&io::stderr()),
        },
    );
    let LiveRead {
        chosen,
        elf_file,
        end,
        consumed: Consumed { status, record, .. },
    } = elfs.consume(input.reader, console, None);
    if let InputEnd::ReadError(error) = end {
        return Err(Failure::Input(format!(
            "reading {} failed: {error}",
            input.name
        )));
    }
    elfs.check_found(chosen, elf_file, status, &record, &input.name)?;
    let report = Report::build(&record);
    if report.outcome.kind != OutcomeKind::HandedOver {
        return Err(Failure::Input(format!(
            "{}: the boot did not hand over to the kernel, so its stage times do not compare with a whole boot's: {}",
            input.name, report.outcome.message
        )));
    }
    Ok(StageTimes::of(&report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::profile::Unit;

    fn boot(page_tables: f64) -> StageTimes {
        StageTimes {
            unit: Unit::Micros,
            stages: vec![
                ("page tables".to_string(), page_tables),
                ("loader total".to_string(), 1000.0),
            ],
            context: Default::default(),
        }
    }

    fn baseline(page_tables: f64) -> Baseline {
        Baseline::parse(&Profile::from_boots(&[boot(page_tables)]).unwrap().to_json()).unwrap()
    }

    /// Runs the flow into a string.
    fn flow(
        boots: &[StageTimes],
        save: Option<&Path>,
        baseline: Option<(&Baseline, f64)>,
    ) -> (Result<ProfileVerdict, Failure>, String, Vec<PathBuf>) {
        let mut out = Vec::new();
        let mut saved = Vec::new();
        let verdict = profile_boots(boots, save, baseline, &mut out, &mut |path| {
            saved.push(path.to_path_buf())
        });
        (verdict, String::from_utf8(out).unwrap(), saved)
    }

    #[test]
    fn statistics_are_shown_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        let (verdict, out, saved) = flow(&[boot(100.0), boot(120.0)], Some(&path), None);
        assert_eq!(verdict.unwrap(), ProfileVerdict::NotCompared);
        assert!(out.starts_with("stage "), "{out}");
        assert!(out.contains("\npage tables "), "{out}");
        assert_eq!(saved, std::slice::from_ref(&path));
        let kept = Baseline::read(&path).unwrap();
        assert_eq!(kept.medians[0], ("page tables".to_string(), 110.0));
    }

    #[test]
    fn a_comparison_passes_or_names_its_regression() {
        let (verdict, out, _) = flow(&[boot(100.0)], None, Some((&baseline(100.0), 0.1)));
        assert_eq!(verdict.unwrap(), ProfileVerdict::Within);
        assert!(out.contains("\n\nstage vs baseline "), "{out}");
        assert!(
            out.ends_with("no stage slower than the baseline by more than 10%\n"),
            "{out}"
        );

        let (verdict, out, _) = flow(&[boot(200.0)], None, Some((&baseline(100.0), 0.1)));
        assert_eq!(
            verdict.unwrap(),
            ProfileVerdict::Regressed(
                "1 stage(s) slower than the baseline by more than 10%".to_string()
            )
        );
        assert!(out.contains("REGRESSION"), "{out}");
        assert!(!out.contains("slower than the baseline"), "{out}");
    }

    #[test]
    fn each_failure_says_its_kind() {
        let (verdict, out, _) = flow(&[], None, None);
        assert!(matches!(verdict, Err(Failure::Input(_))), "{verdict:?}");
        assert!(out.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let unwritable = dir.path().join("no/such/dir/profile.json");
        let (verdict, _, saved) = flow(&[boot(1.0)], Some(&unwritable), None);
        match verdict {
            Err(Failure::Setup(message)) => {
                assert!(
                    message.starts_with("cannot write the profile to"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(saved.is_empty());

        let ticks = Baseline::parse(
            &Profile::from_boots(&[StageTimes {
                unit: Unit::Ticks,
                stages: vec![("page tables".to_string(), 5.0)],
                context: Default::default(),
            }])
            .unwrap()
            .to_json(),
        )
        .unwrap();
        let (verdict, _, _) = flow(&[boot(1.0)], None, Some((&ticks, 0.1)));
        assert!(matches!(verdict, Err(Failure::Setup(_))), "{verdict:?}");
    }
}
